// Package lifecycle holds end-to-end tests of what happens to a message
// that is not delivered at once. They cover deferred-queue scans, backoff time stamps,
// expiry, forced expiry, hold, delay warnings, trace and DSN reports, and
// recovery of files left in the active queue.
//
// Every scenario runs twice in the same test run, under a private Postfix
// 3.7 instance whose qmgr service is the C old queue manager
// (/usr/lib/postfix/sbin/oqmgr) and under one whose qmgr is our build of
// cmd/oqmgr. The tests assert the figures the C program gives, for both,
// so a difference shows up as a failure of the Go run only. Time
// parameters are set to seconds so that a message's whole life fits in a
// test.
//
// The tests need root and the Debian postfix package, like internal/testbed.
package lifecycle
