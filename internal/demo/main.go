// Command demo runs a queue manager inside a private Postfix instance and
// shows what happened to a batch of mail. It starts an smtp-sink as the
// remote server and sends mail over SMTP to remote addresses and with
// sendmail to a local mailbox. Then it waits for the queue to drain and
// prints the results and the queue manager's own log lines. It needs root and the Debian
// postfix package (`make deps`).
//
//	go run ./internal/demo -qmgr bin/oqmgr
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"oqmgr-go/internal/testbed"
)

func main() {
	qmgr := flag.String("qmgr", "bin/oqmgr", "queue manager binary to run as the qmgr service")
	smtpCount := flag.Int("smtp", 20, "number of messages to send over SMTP to the sink")
	localCount := flag.Int("local", 3, "number of messages to send with sendmail to the local mailbox")
	timeout := flag.Duration("timeout", 2*time.Minute, "maximum time to wait for the queue to drain")
	keep := flag.Bool("keep", false, "keep the instance directory after the demo")
	flag.Parse()

	if err := run(*qmgr, *smtpCount, *localCount, *timeout, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(qmgr string, smtpCount, localCount int, timeout time.Duration, keep bool) (err error) {
	qmgr, err = filepath.Abs(qmgr)
	if err != nil {
		return err
	}
	if _, err := os.Stat(qmgr); err != nil {
		return fmt.Errorf("queue manager binary not found: %w (build it with `make build`)", err)
	}

	sink, err := testbed.StartSinkProcess()
	if err != nil {
		return err
	}
	defer sink.Stop()

	inst, err := testbed.Create(testbed.Options{QmgrBinary: qmgr, RelayPort: sink.Port})
	if err != nil {
		return err
	}
	defer func() {
		if closeErr := inst.Close(keep); closeErr != nil {
			err = errors.Join(err, closeErr)
		}
		if keep {
			fmt.Printf("\nkept instance directory %s (reused by a later instance in the same slot)\n", inst.Dir)
		} else {
			fmt.Printf("\nremoved instance directory %s with its mailbox and maillog; -keep keeps them (make demo DEMO_FLAGS=-keep)\n", inst.Dir)
		}
	}()

	fmt.Printf("queue manager:   %s\n", qmgr)
	fmt.Printf("instance:        %s (smtpd on 127.0.0.1:%d)\n", inst.Dir, inst.SMTPPort)
	fmt.Printf("smtp-sink:       127.0.0.1:%d\n", sink.Port)
	if err := inst.Start(); err != nil {
		return err
	}

	start := time.Now()
	for n := range smtpCount {
		rcpt := fmt.Sprintf("user%d@remote.example", n)
		if err := inst.SubmitSMTP("demo@example.org", []string{rcpt}, demoMessage("smtp", n)); err != nil {
			return err
		}
	}
	for n := range localCount {
		if err := inst.Sendmail("demo@example.org", []string{inst.LocalAddress()}, demoMessage("local", n)); err != nil {
			return err
		}
	}
	fmt.Printf("submitted:       %d over SMTP to remote.example, %d with sendmail to %s\n", smtpCount, localCount, inst.LocalAddress())

	drainErr := inst.WaitQueueEmpty(timeout)
	if drainErr == nil {
		fmt.Printf("queue drained:   in %s\n", time.Since(start).Round(10*time.Millisecond))
		// The last log lines travel through postlogd after the files are
		// gone, so wait for them briefly.
		waitRemovedLines(inst, smtpCount+localCount, 5*time.Second)
	}

	if err := report(inst, sink); err != nil {
		return err
	}
	return drainErr
}

func report(inst *testbed.Instance, sink *testbed.Sink) error {
	fmt.Printf("sink received:   %d messages\n", sink.Delivered())

	mailbox := inst.MailboxPath(inst.LocalUser)
	inMailbox, err := inst.MailboxMessages(inst.LocalUser)
	if err != nil {
		return err
	}
	fmt.Printf("local mailbox:   %d messages in %s\n", inMailbox, mailbox)

	counts, err := inst.QueueCounts()
	if err != nil {
		return err
	}
	fmt.Printf("queue files:     maildrop=%d incoming=%d active=%d deferred=%d hold=%d\n",
		counts["maildrop"], counts["incoming"], counts["active"], counts["deferred"], counts["hold"])

	lines, err := inst.LogLines("/qmgr[")
	if err != nil {
		return err
	}
	fmt.Printf("\nqueue manager log lines (%d, from %s):\n", len(lines), inst.MaillogPath)
	fmt.Println(strings.Join(lines, "\n"))

	// The delivery agents log where each message went.
	deliveries, err := inst.LogLines("status=sent")
	if err != nil {
		return err
	}
	fmt.Printf("\ndelivery agent log lines (%d, smtp to the sink, local to the mailbox):\n", len(deliveries))
	fmt.Println(strings.Join(deliveries, "\n"))
	return nil
}

// waitRemovedLines waits until the maillog has want "removed" lines or
// timeout passes.
func waitRemovedLines(inst *testbed.Instance, want int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if lines, err := inst.LogLines(": removed"); err != nil || len(lines) >= want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func demoMessage(kind string, n int) string {
	return fmt.Sprintf("From: demo@example.org\nSubject: oqmgr-go demo %s message %d\n\nThis is %s message %d of the oqmgr-go demo.\n", kind, n, kind, n)
}
