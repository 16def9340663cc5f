// Package bench compares queue managers under real Postfix 3.7 daemons:
// our build, the C oqmgr and the C qmgr (nqmgr) of the Debian package. The
// command in cmd/bench runs it for `make bench`.
//
// Method. The messages are submitted once, over SMTP to a private instance
// whose master.cf has no qmgr service, so they stay in its incoming queue.
// With enable_long_queue_ids = yes, queue file names do not depend on inode
// numbers, so the files are copied out (`cp -a`) and the same files are
// copied into a fresh queue for every contender and round. Each contender
// runs in its own instance (internal/testbed). A round empties the queue,
// restores the files, runs `postfix start`, and measures the qmgr process:
//
//   - time runs from the process start time in /proc/PID/stat to the moment
//     the maillog holds a "removed" line for every message and the queue
//     directories are empty (polled every 10 ms);
//   - CPU time is utime plus stime from /proc/PID/stat, read while the
//     process still runs, because master(8), not this program, is its
//     parent, so getrusage(RUSAGE_CHILDREN) cannot see it;
//   - peak memory is VmHWM from /proc/PID/status.
//
// Each round also checks that the delivery agents logged status=sent for
// every recipient. Contenders take turns in every round, starting with a
// different one each round, and the report gives the best and the median
// over the rounds.
//
// Workloads (see [AllWorkloads]):
//   - discard: one-recipient messages to discard(8), queue on tmpfs, so the
//     queue manager's own cost dominates;
//   - smtp: one-recipient messages through smtp(8) to one smtp-sink;
//   - fanout: 50 recipients over 10 destinations, one smtp-sink each;
//   - deferred: files in the deferred queue stamped an hour in the past,
//     queue on tmpfs;
//   - active: the active queue filled to qmgr_message_active_limit against
//     an smtp-sink that delays its DATA reply, measured until it is full.
//
// Requirements: root and the Debian postfix package, as for
// internal/testbed; perf(1) only for profiling.
package bench
