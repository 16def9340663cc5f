// Package transport owns the queue manager's clients of other Postfix
// daemons, all speaking the attribute protocol of package internal/attr
// over AF_UNIX sockets under the queue directory:
//
//   - [Resolver] queries trivial-rewrite(8) on private/rewrite for the
//     transport, next hop and address of a recipient, and rewrites
//     redirect addresses.
//   - [Agent] hands one delivery request to a delivery agent on
//     private/<transport> and reads its reply, driven by the caller's
//     event loop.
//   - [Notify] and [DeferAppend] send requests to bounce(8) under its
//     bounce, defer and trace service names.
//
// Every call makes one attempt and returns an error on any failure; the
// caller decides whether to retry, defer or give up. Error texts match what
// the C queue manager logs after "warning: " for the same failure, so the
// caller can log them unchanged. The wire formats are those of Postfix 3.7;
// the name of the send-options attribute is the one place where later
// releases differ (see [SendOptsAttr]).
package transport
