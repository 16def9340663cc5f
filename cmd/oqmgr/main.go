// Command oqmgr is a queue manager for Postfix that master(8) runs in
// place of the C oqmgr(8). It takes the generic daemon options of every
// Postfix daemon, reads main.cf and the master.cf -o overrides, and
// schedules the delivery of the mail in the incoming and deferred queues.
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	opts, err := parseOptions(filepath.Base(os.Args[0]), os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: fatal: %v\n", filepath.Base(os.Args[0]), err)
		os.Exit(1)
	}
	os.Exit(run(opts))
}
