// Command oqmgr is a queue manager for Postfix that master(8) runs in
// place of the C oqmgr(8). It takes the generic daemon options of every
// Postfix daemon, reads main.cf and the master.cf -o overrides, and
// schedules the delivery of the mail in the incoming and deferred queues.
//
// Everything master(8) and the operator see of the process follows the C
// program: the order of the start-up steps, the fatal messages and the
// exit statuses, the log identity before and after main.cf is read, the
// privilege changes, and the exit when master closes the status channel.
package main

import "os"

func main() {
	os.Exit(run(os.Args))
}
