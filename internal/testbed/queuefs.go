package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The queue file system of an instance created with Options.QueueFSSize is
// ext4 in an image file on a loop device, mounted with errors=remount-ro.
// Linux refuses to remount a file system read-only while a file on it is
// open for writing, and master's pid file always is. An ext4 error makes
// the kernel remount it read-only regardless, which is also how a queue
// file system goes read-only on a real mail server.
const (
	queueImageName = "queue.img" // in the slot directory, beside queue
	fillerName     = "filler"    // grown by FillQueueFS in the queue directory
)

// mountQueueFS creates the image and mounts it on the queue directory.
// mkfs -m 0 reserves no blocks for root, so the file system is full for
// every program at the same moment.
func (i *Instance) mountQueueFS(size string) error {
	image := filepath.Join(i.Dir, queueImageName)
	if err := run("truncate", "-s", size, image); err != nil {
		return err
	}
	if err := run("mkfs.ext4", "-q", "-F", "-m", "0", image); err != nil {
		return err
	}
	if err := i.attachQueueFS(); err != nil {
		return err
	}
	i.queueFS = true
	return nil
}

// attachQueueFS mounts the image on the queue directory.
func (i *Instance) attachQueueFS() error {
	return run("mount", "-o", "loop,nosuid,nodev,errors=remount-ro",
		filepath.Join(i.Dir, queueImageName), i.QueueDir)
}

// unmountQueueFS undoes mountQueueFS once master and its children are gone.
func (i *Instance) unmountQueueFS() error {
	if !i.queueFS {
		return nil
	}
	if err := unmountIfMounted(i.QueueDir); err != nil {
		return err
	}
	i.queueFS = false
	return nil
}

// unmountIfMounted unmounts dir, and detaches it lazily when something still
// holds it. A dir that is no mount point is left alone. The loop device of
// a mount made with -o loop goes away with the mount.
func unmountIfMounted(dir string) error {
	err := unix.Unmount(dir, 0)
	switch {
	case err == nil, errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.EBUSY):
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("detach queue file system %s: %w", dir, err)
		}
		return nil
	default:
		return fmt.Errorf("unmount queue file system %s: %w", dir, err)
	}
}

// BreakQueueFS reports an error to ext4 through its trigger_fs_error sysfs
// file, as a failing disk would, and the kernel remounts the queue file
// system read-only. Only RepairQueueFS, with the instance stopped, makes it
// writable again.
func (i *Instance) BreakQueueFS() error {
	if !i.queueFS {
		return fmt.Errorf("break %s: the instance has no queue file system of its own", i.QueueDir)
	}
	out, err := exec.Command("findmnt", "-n", "-o", "SOURCE", i.QueueDir).Output()
	if err != nil {
		return fmt.Errorf("find the device of %s: %w", i.QueueDir, err)
	}
	dev := filepath.Base(strings.TrimSpace(string(out)))
	trigger := filepath.Join("/sys/fs/ext4", dev, "trigger_fs_error")
	if err := os.WriteFile(trigger, []byte("oqmgr-go test bed: queue file system failure\n"), 0o200); err != nil {
		return fmt.Errorf("break %s: %w", i.QueueDir, err)
	}
	probe := filepath.Join(i.QueueDir, "probe")
	if f, err := os.Create(probe); err == nil {
		f.Close()
		os.Remove(probe)
		return fmt.Errorf("break %s: still writable after an ext4 error", i.QueueDir)
	}
	return nil
}

// RepairQueueFS does what an operator does after BreakQueueFS: unmount,
// check with e2fsck and mount again. The instance must be stopped.
func (i *Instance) RepairQueueFS() error {
	if !i.queueFS {
		return fmt.Errorf("repair %s: the instance has no queue file system of its own", i.QueueDir)
	}
	if err := unix.Unmount(i.QueueDir, 0); err != nil {
		return fmt.Errorf("repair %s: unmount: %w", i.QueueDir, err)
	}
	// e2fsck exits 1 when it corrected errors, which is the expected case.
	cmd := exec.Command("e2fsck", "-f", "-y", filepath.Join(i.Dir, queueImageName))
	if out, err := cmd.CombinedOutput(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() > 1 {
			return fmt.Errorf("repair %s: e2fsck: %w: %s", i.QueueDir, err, bytes.TrimSpace(out))
		}
	}
	return i.attachQueueFS()
}

// FillQueueFS writes a file in the queue directory until the queue file
// system has no space left, and returns the number of bytes written. The
// instance must have been created with Options.QueueFSSize. FreeQueueFS
// gives the space back.
func (i *Instance) FillQueueFS() (int64, error) {
	if !i.queueFS {
		return 0, fmt.Errorf("fill %s: the instance has no queue file system of its own", i.QueueDir)
	}
	f, err := os.OpenFile(filepath.Join(i.QueueDir, fillerName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("create filler: %w", err)
	}
	defer f.Close()
	block := make([]byte, 64<<10)
	var total int64
	for {
		n, err := f.Write(block)
		total += int64(n)
		if errors.Is(err, unix.ENOSPC) {
			// Delayed allocation can accept a write that the disk cannot
			// hold; Sync makes the shortage show now.
			if err := f.Sync(); err != nil && !errors.Is(err, unix.ENOSPC) {
				return total, fmt.Errorf("fill %s: %w", f.Name(), err)
			}
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("fill %s: %w", f.Name(), err)
		}
		if n < len(block) {
			return total, fmt.Errorf("fill %s: %w", f.Name(), io.ErrShortWrite)
		}
	}
}

// FreeQueueFS removes the file that FillQueueFS wrote.
func (i *Instance) FreeQueueFS() error {
	err := os.Remove(filepath.Join(i.QueueDir, fillerName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove filler: %w", err)
	}
	return nil
}

// run runs a command and returns its output in the error when it fails.
func run(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
