package maillog

// One method per line that oqmgr writes itself. The texts match Postfix
// 3.7 byte for byte, because log tools such as pflogsumm parse them.

import (
	"strings"
	"time"
)

// Notification names for NotifyFailed, as abounce.c prints them.
const (
	NotifyBounce       = "bounce"        // bounce flush
	NotifyDelayWarning = "delay warning" // delay warning from the defer log
	NotifyVERP         = "verp"          // VERP bounce flush
	NotifyTrace        = "trace"         // delivery status report
)

// address applies info_log_address_format to addr.
func (l *Logger) address(addr string) string {
	l.mu.Lock()
	internal := l.o.AddressForm == "internal"
	l.mu.Unlock()
	if internal {
		return addr
	}
	return FormatAddress(addr)
}

// Opened logs that a message entered the active queue, as opened() does:
// "<id>: from=<sender>, size=N, nrcpt=N (queue active)".
func (l *Logger) Opened(id, sender string, size int64, nrcpt int) {
	l.Info("%s: from=<%s>, size=%d, nrcpt=%d (queue active)", id, l.address(sender), size, nrcpt)
}

// Removed logs that a finished message was deleted: "<id>: removed".
func (l *Logger) Removed(id string) {
	l.Info("%s: removed", id)
}

// Expired logs that a message reached its queue lifetime, or was expired
// with postsuper -e when forced is true, and is being returned to sender.
func (l *Logger) Expired(id, sender string, forced bool) {
	status := "expired"
	if forced {
		status = "force-expired"
	}
	l.Info("%s: from=<%s>, status=%s, returned to sender", id, l.address(sender), status)
}

// SavedCorrupt logs the warning for a queue file moved to the corrupt
// queue, as qmgr_active_corrupt does.
func (l *Logger) SavedCorrupt(id, fromQueue string) {
	l.Warning("saving corrupt file \"%s\" from queue \"%s\" to queue \"corrupt\"", id, fromQueue)
}

// NotifyFailed logs that an asynchronous bounce, defer or trace request
// failed, so the message stays queued: "<id>: status=deferred (<what>
// failed)". what is one of NotifyBounce, NotifyDelayWarning, NotifyVERP
// and NotifyTrace.
func (l *Logger) NotifyFailed(id, what string) {
	l.Info("%s: status=deferred (%s failed)", id, what)
}

// SkippedBusy logs that a message is still locked by a delivery agent
// from an earlier queue manager and was left alone.
func (l *Logger) SkippedBusy(id string) {
	l.Info("%s: skipped, still being delivered", id)
}

// TableChanged logs that a lookup table changed on disk, before the
// process exits so that master starts a fresh one.
func (l *Logger) TableChanged(name string) {
	l.Info("table %s has changed -- restarting", name)
}

// Delivery describes one per-recipient result that the queue manager logs
// itself: a discarded double bounce, or a deferral when the retry
// transport is unusable. No delivery agent was involved, so the
// connection and transmission parts of "delays=" are 0.
type Delivery struct {
	QueueID       string
	Recipient     string
	OrigRecipient string // logged as orig_to= when set and not equal to Recipient, ignoring case
	Relay         string // "none" for the queue manager's own results
	DSN           string // enhanced status code, for example "2.0.0"
	Status        string // "sent", "deferred" or "bounced"
	Reason        string

	Arrival       time.Time // when the message entered the incoming queue
	ActiveArrival time.Time // when it entered the active queue, or zero if it never did
	Now           time.Time // when the result was reached; zero means the logger's clock
}

// RecipientStatus logs d in the format of log_adhoc:
// "<id>: to=<rcpt>[, orig_to=<orig>], relay=R, delay=D, delays=a/b/0/0,
// dsn=X.Y.Z, status=S (reason)".
func (l *Logger) RecipientStatus(d Delivery) {
	l.mu.Lock()
	res := l.o.DelayResolution
	now := d.Now
	if now.IsZero() {
		now = l.o.Now()
	}
	l.mu.Unlock()

	var b strings.Builder
	b.WriteString(d.QueueID + ": to=<" + l.address(d.Recipient) + ">")
	if d.OrigRecipient != "" && !strings.EqualFold(d.OrigRecipient, d.Recipient) {
		b.WriteString(", orig_to=<" + l.address(d.OrigRecipient) + ">")
	}
	b.WriteString(", relay=" + d.Relay)

	// Time before the active queue, and time spent in it. Without an
	// active queue time stamp the whole delay counts as the first part.
	before, inActive := elapsed(d.Arrival, now), time.Duration(0)
	if !d.ActiveArrival.IsZero() {
		before = elapsed(d.Arrival, d.ActiveArrival)
		inActive = elapsed(d.ActiveArrival, now)
	}
	b.WriteString(", delay=" + FormatDelay(elapsed(d.Arrival, now), res))
	b.WriteString(", delays=" + FormatDelay(before, res) + "/" + FormatDelay(inActive, res) + "/0/0")
	b.WriteString(", dsn=" + d.DSN + ", status=" + d.Status + " (" + d.Reason + ")")

	l.Info("%s", b.String())
}

// elapsed returns to-from at microsecond precision, as the difference of
// two timevals, and 0 when the clock went backwards.
func elapsed(from, to time.Time) time.Duration {
	return max(to.Truncate(time.Microsecond).Sub(from.Truncate(time.Microsecond)), 0)
}
