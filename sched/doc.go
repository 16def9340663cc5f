// Package sched owns the queue manager's scheduling state: the in-core
// messages of the active queue, the transports, the per-destination queues
// with their concurrency windows, the dead-destination cache and the timers.
//
// One goroutine, the one running Loop.Run, reads and writes that state.
// Like the C program's event loop, it watches the delivery-agent sockets
// itself in an epoll set and waits for trivial-rewrite on its own thread.
// Unlike the C program, it sends the resolve requests of a few newly read
// messages before it waits for the replies (see resolving.go).
// Other goroutines (the trigger server, the workers that send bounce,
// defer and trace notices) only send typed events to the loop's channels.
//
// Failure model, following the C oqmgr of Postfix 3.7:
//   - A queue file that cannot be parsed moves from active to corrupt, with a
//     warning naming the queue id and the reason; other mail goes on.
//   - A recipient whose delivery fails temporarily stays an R record in the
//     file; the file moves to deferred with a future time stamp (backoff
//     grows with the message's age between minimal_backoff_time and
//     maximal_backoff_time) and is retried by a later deferred scan.
//   - A delivery agent that cannot be reached makes its transport dead for
//     transport_retry_time; the waiting recipients are handed to the retry
//     transport, which records the deferral.
//   - A destination that fails a cohort of deliveries is dead for
//     minimal_backoff_time; its waiting recipients go to the retry transport.
//   - A message whose retryable recipients outlive maximal_queue_lifetime
//     (bounce_queue_lifetime for the null sender) is returned to the sender
//     through the defer service, and so is a force-expired one.
//   - Permanent failures are recorded by the agents themselves through
//     bounce(8); the queue manager asks bounce(8) to send the notice at the
//     end of the attempt.
//
// The queue manager never deletes a file that still has recipients to try.
package sched
