package sched

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"oqmgr-go/queue"
	"oqmgr-go/transport"
)

// Flags of bounce(8) requests (bounce.h).
const (
	bounceFlagKeep    = 0
	bounceFlagDelRcpt = 2
)

// finish runs the end of a delivery attempt once a message has no entries
// left, after qmgr_active_done and its continuations. Requests to bounce(8)
// run on a worker, so the loop never waits for them. The cheap steps (a
// stat, a rename, an unlink) run on the loop. The message stays in core,
// counting against the active limit, until the attempt is over.
func (l *Loop) finish(m *message) {
	m.finishing = true
	if l.ctx.Err() != nil {
		// The process is exiting: leave the file in active, where the next
		// process finds it and starts the attempt over, as with the C one.
		return
	}
	if !l.bounceLogPending(m) {
		l.finishRecipients(m, l.markedCorrupt(m))
		return
	}
	l.workers.start(func() {
		if l.notify(m, l.cfg.BounceServiceName, l.flushRequest(m), bounceFlagKeep, "bounce") != 0 {
			m.retry = true
		}
		corrupt := l.markedCorrupt(m)
		l.post(func() { l.finishRecipients(m, corrupt) })
	})
}

// bounceLogPending reports whether agents bounced recipients, so that
// bounce(8) must send a notice; an empty bounce log is removed.
func (l *Loop) bounceLogPending(m *message) bool {
	path := l.dir.Path(queue.Bounce, m.id)
	info, err := os.Stat(path)
	if err != nil {
		return false
	}
	if info.Size() > 0 {
		return true
	}
	if err := l.dir.Remove(queue.Bounce, m.id); err != nil && !errors.Is(err, fs.ErrNotExist) {
		l.log.Warning("%s: remove %s: %v", m.id, path, err)
	}
	return false
}

// markedCorrupt reports whether an agent marked the file corrupt (mode no
// longer ready) during an attempt that left recipients to retry.
func (l *Loop) markedCorrupt(m *message) bool {
	if !m.retry {
		return false
	}
	_, ready := l.dir.Ready(queue.Active, m.id)
	return !ready
}

// finishRecipients runs on the loop: it moves a file an agent marked
// corrupt, loads the next batch of recipients if the file has more, or
// starts the last steps.
func (l *Loop) finishRecipients(m *message, corrupt bool) {
	if corrupt {
		l.setFatal(l.moveCorrupt(m.id))
		l.release(m)
		return
	}
	if m.data.NextRecipientOffset > 0 {
		m.finishing = false
		if err := l.loadMore(m); err != nil {
			var fe *queue.FileError
			if errors.As(err, &fe) {
				l.setFatal(l.saveCorrupt(m.id, err))
				l.release(m)
				return
			}
			l.log.Warning("%s: %v", m.id, err)
		}
		if m.refs == 0 {
			l.finish(m)
		}
		return
	}
	if l.closeNeedsNotice(m) {
		l.workers.start(func() {
			err := l.closeAttempt(m)
			l.post(func() {
				l.setFatal(err)
				l.release(m)
			})
		})
		return
	}
	l.setFatal(l.closeAttempt(m))
	l.release(m)
}

// closeNeedsNotice reports whether closing the attempt sends a trace,
// expiry or delay-warning request, which must not block the loop.
func (l *Loop) closeNeedsNotice(m *message) bool {
	d := m.data
	if d.TraceFlags&(flagUserVerify|flagRecord|flagDelaySent) != 0 || d.ReadFlags&readFlagNotifySuccess != 0 {
		return true
	}
	if !m.retry {
		return false
	}
	now := l.now()
	return m.forced || !now.Before(d.CreateTime.Add(l.lifetime(m))) ||
		(d.WarnTime > 0 && now.Unix() >= d.WarnTime-1)
}

// lifetime is how long the message may stay queued: bounce_queue_lifetime
// for mail from the null sender, maximal_queue_lifetime otherwise.
func (l *Loop) lifetime(m *message) time.Duration {
	if m.data.Sender == "" {
		return l.cfg.BounceQueueLifetime
	}
	return l.cfg.MaximalQueueLifetime
}

// loadMore reads the next batch of recipients into core and schedules it.
// On failure the rest of the file stays unread and the message is retried.
func (l *Loop) loadMore(m *message) error {
	f, err := l.openActive(m.id)
	if err != nil {
		m.retry = true
		m.data.NextRecipientOffset = 0
		return fmt.Errorf("open %s: %w", l.dir.Path(queue.Active, m.id), err)
	}
	defer f.Close()
	if err := queue.ReadMore(f, m.data, l.batchLimit()); err != nil {
		m.retry = true
		m.data.NextRecipientOffset = 0
		return err
	}
	l.assign(m, f, m.data.Recipients, nil)
	return nil
}

// closeAttempt sends the trace report, returns expired mail, sends a due
// delay warning, then either removes the file or defers it with a backoff
// time stamp, after qmgr_active_done_25_generic and
// qmgr_active_done_3_generic. The error is fatal: the queue cannot be
// updated.
func (l *Loop) closeAttempt(m *message) error {
	d := m.data
	if d.TraceFlags&(flagUserVerify|flagRecord|flagDelaySent) != 0 || d.ReadFlags&readFlagNotifySuccess != 0 {
		req := l.flushRequest(m)
		req.Request = transport.NotifyTrace
		status := l.notify(m, l.cfg.TraceServiceName, req, d.TraceFlags, "trace")
		if status == 0 && d.TraceFlagsOffset > 0 && d.TraceFlags == flagRecord {
			l.hideTraceFlags(m)
		}
		if status != 0 {
			m.retry = true
		}
	}

	now := l.now()
	if m.retry {
		expired := ""
		switch {
		case m.forced:
			expired = "force-expired"
		case !now.Before(d.CreateTime.Add(l.lifetime(m))):
			expired = "expired"
		}
		if expired != "" {
			l.log.Expired(string(m.id), d.Sender, expired == "force-expired")
			m.retry = l.notify(m, l.cfg.DeferServiceName, l.flushRequest(m), bounceFlagDelRcpt, "bounce") != 0
		} else if d.WarnTime > 0 && now.Unix() >= d.WarnTime-1 {
			req := l.flushRequest(m)
			req.Request = transport.NotifyWarn
			if l.notify(m, l.cfg.DeferServiceName, req, bounceFlagKeep, "delay warning") == 0 {
				l.markWarned(m)
			}
		}
	}

	if m.retry {
		delay := l.cfg.MinimalBackoffTime
		if !d.CreateTime.IsZero() {
			delay = time.Duration(now.Unix()-d.CreateTime.Unix()) * time.Second
			delay = min(delay, l.cfg.MaximalBackoffTime)
			delay = max(delay, l.cfg.MinimalBackoffTime)
		}
		return l.postpone(m.id, queue.Active, queue.Deferred, delay)
	}
	err := l.dir.Remove(queue.Active, m.id)
	switch {
	case err == nil:
		l.log.Removed(string(m.id))
	case errors.Is(err, fs.ErrNotExist):
		l.log.Warning("qmgr_active_done_3_generic: remove %s from %s: %s", m.id, queue.Active, strerror(err))
	default:
		return fatalf("qmgr_active_done_3_generic: remove %s from %s: %s", m.id, queue.Active, strerror(err))
	}
	return nil
}

// readFlagNotifySuccess is the size-record bit saying some recipient asked
// for a success notice (NOTIFY=SUCCESS shifted left by one).
const readFlagNotifySuccess = 2 << 1

// flushRequest builds the common part of a bounce, defer or trace request.
func (l *Loop) flushRequest(m *message) transport.NotifyRequest {
	d := m.data
	req := transport.NotifyRequest{
		Request:    transport.NotifyFlush,
		QueueName:  queue.Active,
		QueueID:    string(m.id),
		Encoding:   d.Encoding,
		SMTPUTF8:   d.SMTPUTF8,
		Sender:     d.Sender,
		EnvelopeID: d.EnvelopeID,
		RetFlags:   d.RetFlags,
	}
	if d.VERP != "" && !l.cfg.DisableVERPBounces {
		req.Request = transport.NotifyVERP
		req.VERPDelimiters = d.VERP
	}
	return req
}

// notify sends one notification request and logs a failure as the C
// program does; it returns the request's status (non-zero on failure).
func (l *Loop) notify(m *message, service string, req transport.NotifyRequest, flags int, what string) int {
	req.Flags = flags
	if req.Request == transport.NotifyVERP && what == "bounce" {
		what = "verp"
	}
	status, err := l.peers.Notify(l.ctx, service, req)
	if err != nil {
		if warning := transport.NoticeWarning(err); warning != "" {
			l.log.Warning("%s", warning)
		}
		status = -1
	}
	if status != 0 {
		l.log.NotifyFailed(string(m.id), what)
	}
	return status
}

// hideTraceFlags turns the trace_flags record of a "sendmail -v" message
// into a killed record, so the next attempt sends no second report.
func (l *Loop) hideTraceFlags(m *message) {
	f, err := l.openActive(m.id)
	if err != nil {
		l.log.Warning("%s: open %s: %v", m.id, l.dir.Path(queue.Active, m.id), err)
		return
	}
	defer f.Close()
	if err := queue.HideRecord(f, m.data.TraceFlagsOffset); err != nil {
		l.log.Warning("%s: update %s: %v", m.id, f.Name(), err)
	}
}

// markWarned records in the file that the delay warning was sent.
func (l *Loop) markWarned(m *message) {
	f, err := l.openActive(m.id)
	if err != nil {
		l.log.Warning("%s: open %s: %v", m.id, l.dir.Path(queue.Active, m.id), err)
		return
	}
	defer f.Close()
	if err := queue.SetWarnTime(f, m.data.WarnOffset, -1); err != nil {
		l.log.Warning("%s: update %s: %v", m.id, f.Name(), err)
	}
}

// release removes a message whose attempt is over from core.
func (l *Loop) release(m *message) {
	delete(l.messages, m.id)
	if m.data.TraceFlags&flagMTAVerify != 0 {
		l.verifyPending--
	}
	l.recipientCount -= m.inCore
	m.inCore = 0
}

// openActive opens an active queue file for reading more recipients or for
// an in-place update. Unlike the first read it takes no lock, because
// agents may still hold their shared locks, as in qmgr_message_open.
func (l *Loop) openActive(id queue.ID) (*os.File, error) {
	return l.dir.Reopen(queue.Active, id)
}
