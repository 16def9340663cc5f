package sched

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"time"

	"oqmgr-go/internal/attr"

	"oqmgr-go/queue"
)

// Mode bits other Postfix programs set on a queue file to talk to the queue
// manager (mail_queue.h): flush(8) sets g+r to revive dead destinations
// for this message, postsuper -e/-f sets g+x to force expiry.
const (
	modeUnthrottle fs.FileMode = 0o040
	modeExpire     fs.FileMode = 0o010
)

// Trace flags of a message and delivery request (deliver_request.h).
const (
	flagSuccess    = 1
	flagBounce     = 2
	flagDefault    = 3
	flagMTAVerify  = 256
	flagUserVerify = 512
	flagRecord     = 1024
	flagConnLoad   = 2048
	flagConnStore  = 4096
	flagDelaySent  = 8192

	traceOnlyMask = flagMTAVerify | flagUserVerify
	traceMask     = flagMTAVerify | flagUserVerify | flagRecord | flagDelaySent
)

// message is one queue file in the active queue.
type message struct {
	id            queue.ID
	data          *queue.Message
	activeArrival time.Time

	refs      int  // entries still to deliver
	inCore    int  // recipients held in core
	retry     bool // some recipient must be tried again
	flushed   bool // g+r was set: revive dead destinations, ignore defer_transports
	forced    bool // g+x was set: expire at the end of this attempt
	finishing bool
}

// recoverActive moves files left in active by an earlier process back to
// incoming with the current time, as qmgr_move does at start-up.
func (l *Loop) recoverActive() error {
	walk, err := l.dir.Scan(queue.Active)
	if err != nil {
		return fatalf("scan %s: %w", queue.Active, err)
	}
	defer walk.Close()
	now := time.Unix(l.now().Unix(), 0)
	for {
		id, ok := walk.Next()
		if !ok {
			return nil
		}
		if err := l.dir.SetTime(queue.Active, id, now); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fatalf("%s: update time: %w", id, err)
		}
		if err := l.moveFile(id, queue.Active, queue.Incoming); err != nil {
			return err
		}
	}
}

// moveFile renames a queue file between queues. A file that vanished is
// only a warning; any other failure is fatal, as in the C program.
func (l *Loop) moveFile(id queue.ID, from, to string) error {
	err := l.dir.Move(id, from, to)
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		l.log.Warning("%s: rename from %s to %s: %v", id, from, to, err)
		return nil
	}
	return fatalf("%s: rename from %s to %s: %w", id, from, to, err)
}

// importFile moves one ready file from a scanned queue into active and
// reads it into core, after qmgr_active_feed and qmgr_message_alloc.
func (l *Loop) importFile(s *scan, id queue.ID) error {
	info, ok := l.openOK(s.queue, id)
	if !ok {
		return nil
	}
	now := l.now()
	if s.flags&scanAll == 0 && info.ModTime().Unix() > now.Unix()+1 {
		return nil
	}
	if err := l.dir.Move(id, s.queue, queue.Active); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			l.log.Warning("qmgr_active_feed: %s: rename from %s to %s: %s", id, s.queue, queue.Active, strerror(err))
			return nil
		}
		return fatalf("qmgr_active_feed: %s: rename from %s to %s: %s", id, s.queue, queue.Active, strerror(err))
	}

	f, err := l.dir.Open(queue.Active, id)
	if errors.Is(err, queue.ErrLocked) {
		// An agent of an earlier process still delivers this file.
		l.log.SkippedBusy(string(id))
		return l.postpone(id, queue.Active, queue.Incoming, 60*time.Second)
	}
	if err != nil {
		// As in qmgr_message_open: a vanished file is skipped, any other
		// failure means the queue is unusable.
		if errors.Is(err, fs.ErrNotExist) {
			l.log.Warning("open %s %s: %v", queue.Active, id, err)
			return nil
		}
		return fatalf("open %s %s: %w", queue.Active, id, err)
	}
	// The file stays open while its recipients wait for trivial-rewrite.
	keep := false
	defer func() {
		if !keep {
			f.Close()
		}
	}()

	data, err := queue.Read(f, id, l.dir.RelPath(queue.Active, id), l.batchLimit())
	if data != nil && data.HasSender {
		// The C reader logs this line as soon as it meets the sender
		// record, so it appears even for a file that turns out corrupt.
		l.log.Opened(string(id), data.Sender, data.DataSize, data.RcptCount)
	}
	if data != nil {
		for _, w := range data.Warnings {
			l.log.Warning("%s", w)
		}
	}
	if err != nil {
		return l.saveCorrupt(id, err)
	}
	if l.cfg.ConfirmDelayCleared && data.WarnTime < 0 {
		// A delay warning went out: ask for a notice when the delay ends.
		data.TraceFlags |= flagDelaySent
	}
	mode := info.Mode()
	if mode&modeUnthrottle != 0 {
		if err := f.Chmod(mode.Perm() &^ modeUnthrottle); err != nil {
			l.log.Warning("%s: clear flush mark: %v", id, err)
		}
	}

	m := &message{
		id:            id,
		data:          data,
		activeArrival: now,
		flushed:       mode&modeUnthrottle != 0 || s.flags&scanFlush != 0,
		forced:        mode&modeExpire != 0,
	}
	// A force-expired message that already has deferral reasons goes
	// straight to the end of the attempt, which returns it to the sender.
	expireNow := m.forced && l.hasLog(queue.Defer, id)
	if expireNow || data.Redirect != "" {
		// The message cannot join the open batch, so the messages read
		// before it are assigned first, as the C program would have.
		l.finishResolving()
	}
	if data.TraceFlags&flagMTAVerify != 0 {
		l.verifyPending++
	}
	l.messages[id] = m

	if expireNow {
		m.retry = true
		l.finish(m)
		return nil
	}
	if err := l.dir.Remove(queue.Defer, id); err != nil && !errors.Is(err, fs.ErrNotExist) {
		l.log.Warning("%s: remove %s: %v", id, l.dir.Path(queue.Defer, id), err)
	}

	if m.data.Redirect != "" {
		// The redirect address goes through a rewrite request first,
		// which cannot share a batch of resolve requests.
		l.assign(m, f, data.Recipients, nil)
		l.finishIfIdle(m)
		return nil
	}
	keep = true
	l.resolveLater(m, f)
	return nil
}

// filtered reports whether the message goes to its content filter instead
// of where trivial-rewrite routes its recipients.
func (m *message) filtered() bool {
	d := m.data
	return d.Filter != "" && d.Redirect == "" && d.TraceFlags&traceOnlyMask == 0
}

// batchLimit is how many recipients one read loads, after the per-message
// limit of qmgr_message_alloc (qmgr_message_recipient_limit scaled by
// qmgr_fudge_factor).
func (l *Loop) batchLimit() int {
	n := l.cfg.QmgrMessageRecipientLimit * l.cfg.QmgrFudgeFactor / 100
	if n < 1 {
		n = 1
	}
	return n
}

// postpone puts a file back into a queue with a time stamp delay from now.
func (l *Loop) postpone(id queue.ID, from, to string, delay time.Duration) error {
	// Whole seconds, as utime(2) stamps them in the C program.
	next := time.Unix(l.now().Unix(), 0).Add(delay)
	if err := l.dir.SetTime(from, id, next); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fatalf("qmgr_active_defer: update %s time stamps: %s", l.dir.RelPath(from, id), strerror(err))
	}
	err := l.dir.Move(id, from, to)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		l.log.Warning("qmgr_active_defer: rename %s from %s to %s: %s", id, from, to, strerror(err))
		return nil
	default:
		return fatalf("qmgr_active_defer: rename %s from %s to %s: %s", id, from, to, strerror(err))
	}
}

// saveCorrupt logs why a file could not be read and moves it from active
// to corrupt.
func (l *Loop) saveCorrupt(id queue.ID, readErr error) error {
	var fe *queue.FileError
	if errors.As(readErr, &fe) {
		for _, line := range fe.Lines {
			l.log.Warning("%s", line)
		}
	} else {
		l.log.Warning("%s: %v", id, readErr)
	}
	return l.moveCorrupt(id)
}

// moveCorrupt moves a file from active to corrupt, after
// qmgr_active_corrupt: the warning follows a successful rename only, and a
// file that is gone (postsuper removed it) is no corrupt file at all.
func (l *Loop) moveCorrupt(id queue.ID) error {
	err := l.dir.Move(id, queue.Active, queue.Corrupt)
	switch {
	case err == nil:
		l.log.SavedCorrupt(string(id), queue.Active)
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return nil
	default:
		return fatalf("qmgr_active_corrupt: save corrupt file queue %s id %s: %s", queue.Active, id, strerror(err))
	}
}

// strerror returns the C library's text for the system error in err.
func strerror(err error) string {
	return attr.Strerror(err)
}

// hasLog reports whether a non-empty bounce, defer or trace log exists.
func (l *Loop) hasLog(logQueue string, id queue.ID) bool {
	info, err := os.Stat(l.dir.Path(logQueue, id))
	return err == nil && info.Size() > 0
}

// openOK reports whether a scanned entry is a finished queue file, with the
// warnings of mail_open_ok for entries that are not regular files, cannot
// be examined, or have more than one link for over a minute.
func (l *Loop) openOK(queueName string, id queue.ID) (os.FileInfo, bool) {
	rel := l.dir.RelPath(queueName, id)
	info, err := os.Lstat(l.dir.Path(queueName, id))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			l.log.Warning("%s: %s", rel, attr.Strerror(err))
		}
		return nil, false
	}
	stat, _ := info.Sys().(*syscall.Stat_t)
	uid := -1
	if stat != nil {
		uid = int(stat.Uid)
	}
	if !info.Mode().IsRegular() {
		l.log.Warning("%s: uid %d: not a regular file", rel, uid)
		return nil, false
	}
	if info.Mode().Perm()&0o700 != 0o700 {
		return nil, false
	}
	if stat != nil && stat.Nlink > 1 && stat.Ctim.Sec < l.now().Unix()-60 {
		l.log.Warning("%s: uid %d: file has %d links", rel, uid, stat.Nlink)
	}
	return info, true
}
