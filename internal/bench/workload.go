package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// Workload names, as used on the command line, in the table and in the JSON.
const (
	Discard  = "discard"
	SMTP     = "smtp"
	Fanout   = "fanout"
	Deferred = "deferred"
	Active   = "active"
)

// fanoutRecipients and fanoutDestinations shape each fanout message: 50
// recipients spread evenly over 10 domains, each domain routed to its own
// smtp-sink.
const (
	fanoutRecipients   = 50
	fanoutDestinations = 10
)

// slowSinkDelay is the number of seconds the active workload's smtp-sink
// waits before it replies to DATA, so that almost nothing leaves the active
// queue while it is measured.
const slowSinkDelay = 60

// Sizes sets how many messages each workload uses. Active is the
// qmgr_message_active_limit of the active workload, which queues 10% more
// messages than that.
type Sizes struct {
	Discard  int `json:"discard"`
	SMTP     int `json:"smtp"`
	Fanout   int `json:"fanout"`
	Deferred int `json:"deferred"`
	Active   int `json:"active"`
}

// DefaultSizes keep a run of all workloads, three rounds and three
// contenders at about five minutes on two cores (4 min 50 s measured).
var DefaultSizes = Sizes{Discard: 10000, SMTP: 3000, Fanout: 300, Deferred: 20000, Active: 10000}

// FullSizes are the sizes an operator compares queue managers at: 20,000
// discarded messages, 5,000 over SMTP, 1,000 of 50 recipients, 100,000
// deferred files and the default qmgr_message_active_limit of 20,000.
var FullSizes = Sizes{Discard: 20000, SMTP: 5000, Fanout: 1000, Deferred: 100000, Active: 20000}

// Set changes the size of one workload.
func (s *Sizes) Set(workload string, n int) error {
	if n < 1 {
		return fmt.Errorf("invalid size %d for workload %s: want at least 1", n, workload)
	}
	switch workload {
	case Discard:
		s.Discard = n
	case SMTP:
		s.SMTP = n
	case Fanout:
		s.Fanout = n
	case Deferred:
		s.Deferred = n
	case Active:
		s.Active = n
	default:
		return fmt.Errorf("unknown workload %q: want one of %s", workload, strings.Join(AllWorkloads, ", "))
	}
	return nil
}

// ParseSizes applies a list such as "discard=20000,smtp=100" to s.
func (s *Sizes) ParseSizes(list string) error {
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, value, ok := strings.Cut(item, "=")
		if !ok {
			return fmt.Errorf("invalid size %q: want workload=count", item)
		}
		n, err := strconv.Atoi(value)
		if err != nil {
			return fmt.Errorf("invalid size %q: %w", item, err)
		}
		if err := s.Set(name, n); err != nil {
			return err
		}
	}
	return nil
}

// AllWorkloads lists every workload in the order they run.
var AllWorkloads = []string{Discard, SMTP, Fanout, Deferred, Active}

// workload describes how one workload fills, configures and measures an
// instance.
type workload struct {
	name        string
	title       string // one line for the table heading
	messages    int    // messages restored into the queue
	recipients  int    // per message
	queue       string // "incoming", or "deferred" with time stamps in the past
	tmpfs       bool   // instance, and so the queue, on /dev/shm
	pool        string // poolSingle or poolFanout: which filled messages it uses
	activeLimit int    // when non-zero, measure until this many messages are active
}

// Message pools filled through smtpd. The single pool holds one-recipient
// messages and serves every workload but fanout, each taking the first
// messages in name order.
const (
	poolSingle = "single"
	poolFanout = "fanout"
)

// workloads returns the named workloads at the given sizes.
func workloads(names []string, s Sizes) ([]workload, error) {
	var out []workload
	for _, name := range names {
		var w workload
		switch name {
		case Discard:
			w = workload{title: "one-recipient messages to discard(8), queue on tmpfs",
				messages: s.Discard, queue: "incoming", tmpfs: true}
		case SMTP:
			w = workload{title: "one-recipient messages through smtp(8) to smtp-sink",
				messages: s.SMTP, queue: "incoming"}
		case Fanout:
			w = workload{title: fmt.Sprintf("%d-recipient messages over %d smtp-sink destinations", fanoutRecipients, fanoutDestinations),
				messages: s.Fanout, queue: "incoming", pool: poolFanout, recipients: fanoutRecipients}
		case Deferred:
			w = workload{title: "deferred files whose retry time has come, to discard(8), queue on tmpfs",
				messages: s.Deferred, queue: "deferred", tmpfs: true}
		case Active:
			w = workload{title: "active queue filled to qmgr_message_active_limit against a slow smtp-sink",
				messages: s.Active + s.Active/10, queue: "incoming", activeLimit: s.Active}
		default:
			return nil, fmt.Errorf("unknown workload %q: want one of %s", name, strings.Join(AllWorkloads, ", "))
		}
		w.name = name
		if w.pool == "" {
			w.pool = poolSingle
		}
		if w.recipients == 0 {
			w.recipients = 1
		}
		out = append(out, w)
	}
	return out, nil
}

// mainCF returns the main.cf parameters of a contender's instance. sinkPorts
// are the loopback ports of the workload's smtp-sinks: one for smtp and
// active, one per destination for fanout, none otherwise.
func (w workload) mainCF(sinkPorts []int) map[string]string {
	params := map[string]string{
		"enable_long_queue_ids": "yes",
	}
	switch w.name {
	case Discard, Deferred:
		params["default_transport"] = "discard"
	case Fanout:
		var routes []string
		for d, port := range sinkPorts {
			routes = append(routes, fmt.Sprintf("%s=smtp:[127.0.0.1]:%d", fanoutDomain(d), port))
		}
		params["transport_maps"] = "inline:{" + strings.Join(routes, ", ") + "}"
	case Active:
		params["qmgr_message_active_limit"] = strconv.Itoa(w.activeLimit)
	}
	return params
}

// sinkArgs returns the smtp-sink options of each sink the workload needs.
func (w workload) sinkArgs() [][]string {
	switch w.name {
	case SMTP:
		return [][]string{nil}
	case Fanout:
		return make([][]string, fanoutDestinations)
	case Active:
		// smtp-sink needs -p with a delayed reply, or its replies go wrong.
		return [][]string{{"-p", "-w", strconv.Itoa(slowSinkDelay)}}
	}
	return nil
}

func fanoutDomain(d int) string {
	return fmt.Sprintf("d%d.example", d)
}
