package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"oqmgr-go/conf"
	"oqmgr-go/internal/maillog"
)

// dropPrivileges switches to mail_owner (-u) and enters a chroot jail in
// the queue directory (-c), in the order of chroot_uid in
// src/util/chroot_uid.c: look the user up and set the group IDs, chroot,
// then set the user ID. Everything that needs files outside the jail is
// read first: the password and group files, and the local time zone,
// which Go loads on first use and Postfix loads with tzset().
func dropPrivileges(cfg *conf.Config, chroot, dropPrivs bool, log *maillog.Logger) error {
	_, _ = time.Now().Zone() // loads /etc/localtime now, like tzset()

	var uid, gid int
	rootDir, userName := "(none)", "(none)"
	if dropPrivs {
		userName = cfg.MailOwner
		u, err := user.Lookup(cfg.MailOwner)
		if err != nil {
			return fmt.Errorf("unknown user: %s", cfg.MailOwner)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		groups, err := supplementaryGroups(u, gid)
		if err != nil {
			return fmt.Errorf("initgroups: %w", err)
		}
		if err := unix.Setgid(gid); err != nil {
			return fmt.Errorf("setgid(%d): %s", gid, cError(err))
		}
		if err := unix.Setgroups(groups); err != nil {
			return fmt.Errorf("initgroups: %s", cError(err))
		}
	}
	if chroot {
		rootDir = cfg.QueueDirectory
		if err := unix.Chroot(cfg.QueueDirectory); err != nil {
			return fmt.Errorf("chroot(%s): %s", cfg.QueueDirectory, cError(err))
		}
		if err := os.Chdir("/"); err != nil {
			return fmt.Errorf("chdir(/): %s", cError(unwrapErrno(err)))
		}
	}
	if dropPrivs {
		// Go applies setuid to every thread of the process (Linux).
		if err := unix.Setuid(uid); err != nil {
			return fmt.Errorf("setuid(%d): %s", uid, cError(err))
		}
	}
	log.Debug(2, "chroot %s user %s", rootDir, userName)
	return nil
}

// supplementaryGroups returns the groups that initgroups(3) would set for
// u: its primary group and every group that lists it as a member.
func supplementaryGroups(u *user.User, gid int) ([]int, error) {
	ids, err := u.GroupIds()
	if err != nil {
		return nil, err
	}
	groups := []int{gid}
	for _, id := range ids {
		n, err := strconv.Atoi(id)
		if err != nil {
			return nil, fmt.Errorf("group id %q of user %s is not a number", id, u.Username)
		}
		if n != gid {
			groups = append(groups, n)
		}
	}
	return groups, nil
}

// runShell runs command with /bin/sh and waits for it, like system(3).
// Its exit status is ignored, as debug_process ignores it.
func runShell(command string) error {
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	return cmd.Run()
}
