// Package trigger owns the queue manager's trigger input: the bytes that
// master(8), cleanup(8), postqueue(1), flush(8) and postkick(1) send to the
// qmgr endpoint, and the loop that reads them.
//
// Parse turns one trigger buffer into a Request set, with the same
// collapsing as oqmgr's qmgr_trigger_event: every byte of a buffer is OR-ed
// into one set, so duplicates and byte order inside a buffer do not matter.
// Server reads buffers from the endpoint that master passes on fd 6, the
// way Postfix's trigger_server skeleton does, and reports each trigger to
// master as taken and then available again.
//
// The package decides nothing about scans or dead destinations. What a
// Request means for the queue is up to the scheduler that receives it.
package trigger
