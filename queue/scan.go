package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// scanBatch is how many directory entries one readdir call fetches.
const scanBatch = 64

// Scan walks one queue directory, returning one queue id per call to
// [Scan.Next], so that a caller can interleave two scans the way the queue
// manager alternates between incoming and deferred. Like mail_scan_dir_next
// it descends into every entry whose name is one character long (a hash
// subdirectory) at the moment it meets it, and returns every other name.
// Names are returned in directory order, unsorted. Names that are not
// valid queue ids are skipped, as mail_open_ok would reject them anyway.
// A Scan is not safe for concurrent use.
type Scan struct {
	queue string
	stack []*scanLevel
	err   error
}

type scanLevel struct {
	dir     *os.File
	names   []string
	done    bool
	readErr error
}

// Scan opens the top directory of a queue for scanning.
func (d *Dir) Scan(queue string) (*Scan, error) {
	s := &Scan{queue: queue}
	if err := s.push(filepath.Join(d.root, queue)); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Scan) push(path string) error {
	dir, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("scan queue %s: %w", s.queue, err)
	}
	s.stack = append(s.stack, &scanLevel{dir: dir})
	return nil
}

func (s *Scan) pop() {
	top := s.stack[len(s.stack)-1]
	top.dir.Close()
	s.stack = s.stack[:len(s.stack)-1]
}

// Next returns the next queue id, or false at the end of the scan or after
// an error, which [Scan.Err] then returns.
func (s *Scan) Next() (ID, bool) {
	for len(s.stack) > 0 {
		top := s.stack[len(s.stack)-1]
		name, ok := top.next()
		if !ok {
			if top.err() != nil && s.err == nil {
				s.err = fmt.Errorf("scan queue %s: %w", s.queue, top.err())
			}
			s.pop()
			continue
		}
		if len(name) == 1 {
			if err := s.push(filepath.Join(top.dir.Name(), name)); err != nil && s.err == nil {
				s.err = err
			}
			continue
		}
		if validID(name) {
			return ID(name), true
		}
	}
	return "", false
}

// Err returns the first error met while reading a directory, if any. The
// scan skips an unreadable subdirectory and goes on.
func (s *Scan) Err() error { return s.err }

// Close releases every open directory handle and returns [Scan.Err].
func (s *Scan) Close() error {
	for len(s.stack) > 0 {
		s.pop()
	}
	return s.err
}

func (l *scanLevel) next() (string, bool) {
	for len(l.names) == 0 {
		if l.done {
			return "", false
		}
		names, err := l.dir.Readdirnames(scanBatch)
		l.names = names
		if err != nil {
			l.done = true
			if !errors.Is(err, io.EOF) {
				l.readErr = err
			}
		}
	}
	name := l.names[0]
	l.names = l.names[1:]
	return name, true
}

func (l *scanLevel) err() error { return l.readErr }
