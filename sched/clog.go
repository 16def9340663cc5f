package sched

// warnClog warns, at most once per qmgr_clog_warn_time for a destination,
// when that destination holds more than a fifth of the active queue, with
// the hints the C program gives, after qmgr_entry_create.
func (l *Loop) warnClog(q *destQueue) {
	if !l.cfg.HelpfulWarnings || l.cfg.QmgrClogWarnTime <= 0 {
		return
	}
	length := len(q.todo) + len(q.busy)
	now := l.now()
	if length <= l.cfg.QmgrMessageActiveLimit/5 || now.Before(q.nextClogWarn) {
		return
	}

	tr := q.transport
	// Messages read after this one that still wait for trivial-rewrite
	// are not in the active queue yet as far as the C program would know.
	messages := len(l.messages) - l.unassigned
	share := float64(length) / float64(messages)
	l.log.Warning("mail for %s is using up %d of %d active queue entries", q.nexthop, length, messages)
	if share < 0.9 {
		l.log.Warning("this may slow down other mail deliveries")
	}
	switch {
	case tr.limits.ConcurrencyLimit > 0 && tr.limits.ConcurrencyLimit <= len(q.busy)+1:
		l.log.Warning("you may need to increase the main.cf %s_destination_concurrency_limit from %d",
			tr.name, tr.limits.ConcurrencyLimit)
	case float64(q.window) > float64(l.cfg.QmgrMessageActiveLimit)*share:
		l.log.Warning("you may need to increase the main.cf qmgr_message_active_limit from %d",
			l.cfg.QmgrMessageActiveLimit)
	case len(tr.order) > 1:
		l.log.Warning("you may need a separate master.cf transport for %s", q.nexthop)
	default:
		l.log.Warning("you may need to reduce %s connect and helo timeouts", tr.name)
		l.log.Warning("so that Postfix quickly skips unavailable hosts")
		l.log.Warning("you may need to increase the main.cf minimal_backoff_time and maximal_backoff_time")
		l.log.Warning("so that Postfix wastes less time on undeliverable mail")
		l.log.Warning("you may need to increase the master.cf %s process limit", tr.name)
	}
	l.log.Warning("please avoid flushing the whole queue when you have")
	l.log.Warning("lots of deferred mail, that is bad for performance")
	l.log.Warning("to turn off these warnings specify: qmgr_clog_warn_time = 0")
	q.nextClogWarn = now.Add(l.cfg.QmgrClogWarnTime)
}
