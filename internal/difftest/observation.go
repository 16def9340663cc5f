package difftest

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Observation is the record of one run of a scenario, as seen from outside
// the queue manager. Queue ids, ports and delays in its strings are normalised, so
// the observations of the two queue managers can be compared directly.
type Observation struct {
	Qmgr       string              // "C" or "Go"
	Lines      []LogLine           // every maillog line, as written
	Samples    map[string][]Sample // established connections per sink name
	Deliveries []Delivery          // every per-recipient status line, in log order
	// Received lists, per sink name, the number of recipients of each
	// message the sink accepted, in arrival order. It is filled at the end
	// of a run.
	Received map[string][]int

	labels map[string]string // queue id to message label
	ports  map[string]string // ":port" to ":name" of the sink on that port
}

// Delivery is one per-recipient status line, written by a delivery agent
// or, when it defers a recipient itself, by the queue manager.
type Delivery struct {
	At        time.Duration // when the observer read the line
	Delay     time.Duration // the line's delay=, time since the message arrived, two digits
	Program   string        // process name from the log tag: "smtp", "error" (also for retry), "qmgr"
	Message   string        // message label (see Env.Submit) or "id<n>" for other mail
	Recipient string
	Relay     string // normalised: "127.0.0.1[127.0.0.1]:<sink>" or "none"
	DSN       string
	Status    string // sent, deferred, bounced, ...
	Reason    string // the parenthesised text, normalised
}

// suspendedPrefix starts the reason of a recipient that the queue manager
// handed to the retry agent because its destination was dead.
const suspendedPrefix = "delivery temporarily suspended: "

var (
	// syslogLine splits a maillog line into program, pid and text.
	syslogLine = regexp.MustCompile(`^\w{3} [ 0-9]\d \d\d:\d\d:\d\d \S+ postfix/([^\[\s]+)\[(\d+)\]: (.*)$`)
	// queueIDText matches a text that starts with a queue id.
	queueIDText = regexp.MustCompile(`^([0-9A-F]{6,}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{12,}): `)
	// messageIDText is cleanup's line for a message that Env.Submit sent.
	messageIDText = regexp.MustCompile(`^(\S+): message-id=<difftest-([^@>]+)@`)
	// statusText is a per-recipient status line after the queue id.
	statusText = regexp.MustCompile(`^to=<([^>]*)>,(?: orig_to=<[^>]*>,)? relay=([^,]+),(?: conn_use=\d+,)? delay=([0-9.]+), delays=[0-9./]+, dsn=([0-9.]+), status=(\S+) \((.*)\)$`)
	delayField = regexp.MustCompile(`delay=[0-9.]+, delays=[0-9./]+`)
	portField  = regexp.MustCompile(`:\d{2,5}\b`)
)

// newObservation parses the lines recorded in one run. ports maps sink
// names to their ports.
func newObservation(qmgr string, lines []LogLine, samples map[string][]Sample, ports map[string]int) *Observation {
	o := &Observation{
		Qmgr:    qmgr,
		Lines:   lines,
		Samples: samples,
		labels:  make(map[string]string),
		ports:   make(map[string]string),
	}
	for name, port := range ports {
		o.ports[":"+strconv.Itoa(port)] = ":" + name
	}

	// Label submitted messages first, so that a line logged before
	// cleanup's message-id line still gets the right label.
	for _, line := range lines {
		_, _, text, ok := splitLine(line.Text)
		if !ok {
			continue
		}
		if m := messageIDText.FindStringSubmatch(text); m != nil {
			o.labels[m[1]] = m[2]
		}
	}
	others := 0
	for _, line := range lines {
		program, _, text, ok := splitLine(line.Text)
		if !ok {
			continue
		}
		m := queueIDText.FindStringSubmatch(text)
		if m == nil {
			continue
		}
		if _, known := o.labels[m[1]]; !known {
			others++
			o.labels[m[1]] = fmt.Sprintf("id%d", others)
		}
		if d, ok := o.parseStatus(program, m[1], strings.TrimPrefix(text, m[0])); ok {
			d.At = line.At
			o.Deliveries = append(o.Deliveries, d)
		}
	}
	return o
}

func splitLine(line string) (program string, pid int, text string, ok bool) {
	m := syslogLine.FindStringSubmatch(line)
	if m == nil {
		return "", 0, "", false
	}
	pid, _ = strconv.Atoi(m[2])
	return m[1], pid, m[3], true
}

func (o *Observation) parseStatus(program, id, text string) (Delivery, bool) {
	m := statusText.FindStringSubmatch(text)
	if m == nil {
		return Delivery{}, false
	}
	delay, _ := strconv.ParseFloat(m[3], 64)
	return Delivery{
		Delay:     time.Duration(delay * float64(time.Second)),
		Program:   program,
		Message:   o.labels[id],
		Recipient: m[1],
		Relay:     o.normalise(m[2]),
		DSN:       m[4],
		Status:    m[5],
		Reason:    o.normalise(m[6]),
	}, true
}

// normalise replaces queue ids by message labels, sink ports by sink names
// and delay figures by "*".
func (o *Observation) normalise(text string) string {
	if m := queueIDText.FindStringSubmatch(text); m != nil {
		text = o.labels[m[1]] + ": " + strings.TrimPrefix(text, m[0])
	}
	text = delayField.ReplaceAllString(text, "delay=*, delays=*")
	return portField.ReplaceAllStringFunc(text, func(port string) string {
		if name, ok := o.ports[port]; ok {
			return name
		}
		return port
	})
}

// ProgramLines returns the normalised texts of the lines that program
// wrote (e.g. "qmgr"), in log order, without tag and pid.
func (o *Observation) ProgramLines(program string) []string {
	var out []string
	for _, line := range o.Lines {
		p, _, text, ok := splitLine(line.Text)
		if ok && p == program {
			out = append(out, o.normalise(text))
		}
	}
	return out
}

// QmgrLines returns the queue manager's normalised log lines.
func (o *Observation) QmgrLines() []string {
	return o.ProgramLines("qmgr")
}

// CountQmgr returns the number of queue manager lines that contain substr.
func (o *Observation) CountQmgr(substr string) int {
	n := 0
	for _, line := range o.QmgrLines() {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}

// Filter returns the deliveries for which keep returns true.
func (o *Observation) Filter(keep func(Delivery) bool) []Delivery {
	var out []Delivery
	for _, d := range o.Deliveries {
		if keep(d) {
			out = append(out, d)
		}
	}
	return out
}

// StatusCounts counts the status lines per "program status dsn", for
// example "smtp sent 2.0.0" or "error deferred 4.4.1".
func (o *Observation) StatusCounts() map[string]int {
	counts := make(map[string]int)
	for _, d := range o.Deliveries {
		counts[d.Program+" "+d.Status+" "+d.DSN]++
	}
	return counts
}

// Suspended returns the deliveries that the retry agent deferred because
// the queue manager found their destination dead.
func (o *Observation) Suspended() []Delivery {
	return o.Filter(func(d Delivery) bool { return strings.HasPrefix(d.Reason, suspendedPrefix) })
}

// minHold is how long a connection count must last to count in
// MaxConnections and Climb. Runs of both queue managers showed a finished
// delivery's connection still established for a few milliseconds after the
// next one opened. The scenarios that assert concurrency use sinks whose
// DATA reply takes one second.
const minHold = 100 * time.Millisecond

// held returns the samples of a sink whose count lasted at least minHold.
// The last sample always counts.
func (o *Observation) held(sink string) []Sample {
	series := o.Samples[sink]
	var out []Sample
	for n, s := range series {
		if n+1 < len(series) && series[n+1].At-s.At < minHold {
			continue
		}
		out = append(out, s)
	}
	return out
}

// MaxConnections returns the highest number of established connections
// that lasted at least minHold at a sink.
func (o *Observation) MaxConnections(sink string) int {
	highest := 0
	for _, s := range o.held(sink) {
		highest = max(highest, s.Connections)
	}
	return highest
}

// Climb returns, for each connection count from 1 up to MaxConnections, the
// first time a count at least that high began and lasted minHold.
func (o *Observation) Climb(sink string) []time.Duration {
	var firsts []time.Duration
	for _, s := range o.held(sink) {
		for len(firsts) < s.Connections {
			firsts = append(firsts, s.At)
		}
	}
	return firsts
}

// Messages returns the labels of messages with at least one status line,
// sorted.
func (o *Observation) Messages() []string {
	var labels []string
	for _, d := range o.Deliveries {
		if !slices.Contains(labels, d.Message) {
			labels = append(labels, d.Message)
		}
	}
	slices.Sort(labels)
	return labels
}
