package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Queue directory names under $queue_directory (mail_queue.h).
const (
	Incoming = "incoming"
	Active   = "active"
	Deferred = "deferred"
	Hold     = "hold"
	Corrupt  = "corrupt"
	Bounce   = "bounce"
	Defer    = "defer"
	Trace    = "trace"
)

// Queue file permission bits with a meaning to Postfix (mail_queue.h).
const (
	// ModeReady is set on a file that cleanup(8) has finished writing.
	ModeReady fs.FileMode = 0o700
	// ModeUnthrottle (g+r) is set by flush(8) to ask the queue manager to
	// retry dead destinations for this message; the reader clears it.
	ModeUnthrottle fs.FileMode = 0o040
	// ModeExpire (g+x) is set by postsuper -e and -f to force expiry.
	ModeExpire fs.FileMode = 0o010
)

// hashDirMode is the mode of hash subdirectories created on demand.
const hashDirMode = 0o700

// ErrLocked is returned by [Dir.Open] when another process, normally a
// delivery agent started by an earlier queue manager, holds a lock on the
// queue file.
var ErrLocked = errors.New("queue file is locked")

// Dir is a queue directory ($queue_directory) with Postfix's hashing rules:
// queues named in hash_queue_names (matched case-insensitively) keep each
// file under hash_queue_depth levels of one-character subdirectories.
type Dir struct {
	root   string
	hashed map[string]bool // lower-cased queue names
	depth  int
}

// NewDir returns the queue directory rooted at root. hashQueueNames is the
// split value of hash_queue_names (Postfix 3.7 default: deferred, defer) and
// hashDepth that of hash_queue_depth (default 1). A depth below 1, which
// Postfix rejects at start-up, is treated as 1.
func NewDir(root string, hashQueueNames []string, hashDepth int) *Dir {
	hashed := make(map[string]bool, len(hashQueueNames))
	for _, name := range hashQueueNames {
		hashed[strings.ToLower(name)] = true
	}
	return &Dir{root: root, hashed: hashed, depth: max(hashDepth, 1)}
}

// Root returns the queue directory.
func (d *Dir) Root() string { return d.root }

// RelPath returns the path of a queue file relative to the queue directory,
// including hash subdirectories (deferred/3/3B2A41C0D7F). Postfix daemons
// run inside the queue directory, so this is how their log lines name
// files.
func (d *Dir) RelPath(queue string, id ID) string {
	var b strings.Builder
	b.WriteString(queue)
	b.WriteByte('/')
	if d.hashed[strings.ToLower(queue)] {
		key := id.hashKey()
		for i := 0; i < d.depth; i++ {
			c := byte('_')
			if i < len(key) {
				c = key[i]
			}
			b.WriteByte(c)
			b.WriteByte('/')
		}
	}
	b.WriteString(string(id))
	return b.String()
}

// Path returns the absolute path of a queue file, including hash
// subdirectories.
func (d *Dir) Path(queue string, id ID) string {
	return filepath.Join(d.root, d.RelPath(queue, id))
}

// Move renames a queue file from one queue to another, creating missing
// hash subdirectories of the target with mode 0700 (mail_queue_rename).
// When the source file no longer exists the error wraps [os.ErrNotExist].
func (d *Dir) Move(id ID, from, to string) error {
	oldPath := d.Path(from, id)
	newPath := d.Path(to, id)

	err := os.Rename(oldPath, newPath)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("queue %s: move %s to %s: %w", id, from, to, err)
	}
	if _, statErr := os.Lstat(oldPath); statErr != nil {
		return fmt.Errorf("queue %s: move %s to %s: %w", id, from, to, statErr)
	}

	// The source exists, so the target's hash directory is what is missing.
	if mkErr := os.MkdirAll(filepath.Dir(newPath), hashDirMode); mkErr != nil {
		return fmt.Errorf("queue %s: move %s to %s: create directory: %w", id, from, to, mkErr)
	}
	if err := os.Rename(oldPath, newPath); err != nil {
		return fmt.Errorf("queue %s: move %s to %s: %w", id, from, to, err)
	}
	return nil
}

// SetTime sets both the access and the modification time of a queue file
// to t. The queue manager stores the next delivery attempt of a deferred
// message this way.
func (d *Dir) SetTime(queue string, id ID, t time.Time) error {
	if err := os.Chtimes(d.Path(queue, id), t, t); err != nil {
		return fmt.Errorf("queue %s: set time of %s: %w", id, d.RelPath(queue, id), err)
	}
	return nil
}

// Remove unlinks a queue file (or a bounce, defer or trace log, which use
// the same naming). A missing file yields an error wrapping
// [os.ErrNotExist].
func (d *Dir) Remove(queue string, id ID) error {
	if err := os.Remove(d.Path(queue, id)); err != nil {
		return fmt.Errorf("queue %s: remove %s: %w", id, d.RelPath(queue, id), err)
	}
	return nil
}

// Ready reports whether a queue file may be opened, as mail_open_ok
// decides: it is a regular file (lstat, so a symbolic link is not) and its
// owner permission bits are exactly rwx. Files that cleanup(8) is still
// writing (0600) or that a delivery agent marked corrupt (0400) are not
// ready. The FileInfo is returned whenever lstat succeeded.
func (d *Dir) Ready(queue string, id ID) (os.FileInfo, bool) {
	info, err := os.Lstat(d.Path(queue, id))
	if err != nil {
		return nil, false
	}
	if !info.Mode().IsRegular() {
		return info, false
	}
	return info, info.Mode().Perm()&0o700 == ModeReady
}

// Open opens a queue file read-write and takes the exclusive non-blocking
// flock(2) that the C queue manager takes while it reads a file into
// memory (qmgr_message_alloc). Delivery agents hold a shared lock while
// they deliver, so [ErrLocked] means a delivery is still in progress. The
// lock lasts until the file is closed.
func (d *Dir) Open(queue string, id ID) (*os.File, error) {
	path := d.Path(queue, id)
	fd, err := openFd(path)
	if err != nil {
		return nil, fmt.Errorf("queue %s: open %s: %w", id, d.RelPath(queue, id), err)
	}

	err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		return os.NewFile(uintptr(fd), path), nil
	}
	unix.Close(fd)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return nil, fmt.Errorf("queue %s: lock %s: %w", id, d.RelPath(queue, id), ErrLocked)
	}
	return nil, fmt.Errorf("queue %s: lock %s: %w", id, d.RelPath(queue, id), err)
}

// Reopen opens a queue file read-write without a lock, for reading more
// recipients of a message in core or updating its records, while agents
// may hold their shared locks (qmgr_message_open does the same).
func (d *Dir) Reopen(queue string, id ID) (*os.File, error) {
	path := d.Path(queue, id)
	fd, err := openFd(path)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// openFd opens path read-write and returns the bare descriptor, for
// os.NewFile. os.OpenFile would first try to add the regular file to the
// runtime's network poller: four fcntl calls and a failing epoll_ctl for
// every queue file. The error is an *os.PathError, as from os.OpenFile.
func openFd(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}
