package testbed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxSlots is the maximum number of instances that can exist at the same
// time on one machine.
const maxSlots = 64

// baseDir returns the directory that holds every slot and sink directory.
// It must be root-owned and reachable by the postfix user and the local
// delivery user, which a t.TempDir() under /tmp (mode 0700) is not.
func baseDir() (string, error) {
	dir := filepath.Join(os.TempDir(), "oqmgr-testbed")
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("create test bed directory: %w", err)
	}

	// Refuse a directory that someone else prepared: daemons running as root
	// write below it.
	info, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("check test bed directory: %w", err)
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !info.IsDir() || !ok || int(st.Uid) != os.Geteuid() {
		return "", fmt.Errorf("test bed directory %s is not a directory owned by uid %d: remove it", dir, os.Geteuid())
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("chmod test bed directory: %w", err)
	}
	return dir, nil
}

// slot is an exclusively held, reusable instance directory. The lock is an
// flock(2) on a file next to the directory, so it is released when the
// holding process dies, even without cleanup.
type slot struct {
	dir  string
	lock *os.File
}

// claimSlot locks the first free slot, stops whatever a crashed previous
// holder left running in it and empties its directory.
func claimSlot() (*slot, error) {
	base, err := baseDir()
	if err != nil {
		return nil, err
	}
	for n := range maxSlots {
		name := filepath.Join(base, fmt.Sprintf("slot-%02d", n))
		f, err := os.OpenFile(name+".lock", os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open slot lock: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				continue
			}
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}

		s := &slot{dir: name, lock: f}
		if err := killLeftovers(name); err != nil {
			s.release()
			return nil, err
		}
		// A kept instance may still have its own queue file system.
		if err := unmountIfMounted(filepath.Join(name, "queue")); err != nil {
			s.release()
			return nil, err
		}
		if err := os.RemoveAll(name); err != nil {
			s.release()
			return nil, fmt.Errorf("empty slot %s: %w", name, err)
		}
		if err := os.Mkdir(name, 0o755); err != nil {
			s.release()
			return nil, fmt.Errorf("create slot %s: %w", name, err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("all %d test bed slots under %s are in use", maxSlots, base)
}

func (s *slot) release() {
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
}

// killLeftovers stops processes that run a program from dir, for example a
// master left behind when a test binary was killed by its -timeout before
// its cleanups ran. The master found through the pid file gets SIGTERM first
// so that it stops its children itself.
func killLeftovers(dir string) error {
	if pid, ok := masterPID(filepath.Join(dir, "queue")); ok && processUnder(pid, dir) {
		_ = unix.Kill(pid, unix.SIGTERM)
		waitGone([]int{pid}, 5*time.Second)
	}
	pids := processesUnder(dir)
	if len(pids) == 0 {
		return nil
	}
	for _, pid := range pids {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	if left := waitGone(pids, 5*time.Second); len(left) > 0 {
		return fmt.Errorf("processes %v from %s survived SIGKILL", left, dir)
	}
	return nil
}

// masterPID reads master's pid file and reports whether that process exists.
func masterPID(queueDir string) (int, bool) {
	data, err := os.ReadFile(filepath.Join(queueDir, "pid", "master.pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, processExists(pid)
}

func processExists(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// processUnder reports whether the executable of pid lies below dir. The
// kernel appends " (deleted)" to the link once the file is removed, which
// still matches the prefix.
func processUnder(pid int, dir string) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && strings.HasPrefix(exe, dir+string(filepath.Separator))
}

// processesUnder lists the processes whose executable lies below dir.
func processesUnder(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if processUnder(pid, dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitGone polls until none of pids exists or timeout passes, and returns
// the processes that still exist.
func waitGone(pids []int, timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		var left []int
		for _, pid := range pids {
			if processExists(pid) && !isZombie(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// isZombie reports whether pid has exited but was not reaped yet, which
// happens to processes whose parent is this test binary.
func isZombie(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may itself
	// contain spaces or parentheses.
	i := strings.LastIndexByte(string(data), ')')
	return i > 0 && i+2 < len(data) && data[i+2] == 'Z'
}
