// Package queue owns the Postfix queue directory on disk. That covers queue
// ids and their hashed paths, directory scans, renames between queues, time
// stamps and removals. It also covers the record format of a queue file,
// reading a queue file into a typed [Message], and the few in-place updates
// a queue manager makes (recipient done, delay warning sent, trace record
// hidden).
//
// The behaviour follows Postfix 3.7: the record layer of
// src/global/record.c, the queue paths of src/global/mail_queue.c and
// src/util/dir_forest.c, the scans of src/global/mail_scan_dir.c and the
// envelope walk of qmgr_message_read in src/oqmgr/qmgr_message.c.
//
// The package knows nothing about scheduling or delivery. It never logs:
// warnings that the C queue manager logs while reading a file are returned
// as text (see [Message.Warnings] and [FileError.LogText]) so that the
// caller writes them to the mail log in Postfix's exact wording.
package queue
