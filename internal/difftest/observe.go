package difftest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// pollInterval is how often the observer reads the maillog and
// /proc/net/tcp. Status lines are stamped with the time they were read, so
// a stamp is late by up to this much plus postlogd's own delay.
const pollInterval = 10 * time.Millisecond

// LogLine is one maillog line and the time since the scenario started at
// which the observer read it. postlogd stamps lines in whole seconds only,
// which is too coarse for the timing figures.
type LogLine struct {
	At   time.Duration
	Text string // the line without the trailing newline
}

// Sample is the number of established connections at one sink, recorded
// each time it changes.
type Sample struct {
	At          time.Duration
	Connections int
}

// observer follows one instance's maillog and samples the connections at
// its sinks until stop is called.
type observer struct {
	start   time.Time
	maillog string
	ports   map[string]int // sink name to port

	mu      sync.Mutex
	lines   []LogLine
	samples map[string][]Sample

	done    chan struct{}
	stopped chan struct{}
}

func startObserver(maillog string, ports map[string]int) *observer {
	o := &observer{
		start:   time.Now(),
		maillog: maillog,
		ports:   ports,
		samples: make(map[string][]Sample),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go o.run()
	return o
}

func (o *observer) run() {
	defer close(o.stopped)
	var offset int64
	var partial []byte
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		offset, partial = o.readLog(offset, partial)
		o.sampleConnections()
		select {
		case <-o.done:
			return
		case <-ticker.C:
		}
	}
}

// readLog appends the complete lines written since offset and returns the
// new offset and any unfinished last line.
func (o *observer) readLog(offset int64, partial []byte) (int64, []byte) {
	f, err := os.Open(o.maillog)
	if err != nil {
		return offset, partial // postlogd has not created it yet
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return offset, partial
	}
	data, err := io.ReadAll(f)
	if err != nil || len(data) == 0 {
		return offset, partial
	}
	offset += int64(len(data))
	data = append(partial, data...)

	at := time.Since(o.start)
	o.mu.Lock()
	defer o.mu.Unlock()
	for {
		line, rest, found := bytes.Cut(data, []byte("\n"))
		if !found {
			return offset, data
		}
		o.lines = append(o.lines, LogLine{At: at, Text: string(line)})
		data = rest
	}
}

// sampleConnections records the established connections at each sink
// whenever the number changed since the last sample.
func (o *observer) sampleConnections() {
	if len(o.ports) == 0 {
		return
	}
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return
	}
	counts := countEstablished(string(data), o.ports)
	at := time.Since(o.start)

	o.mu.Lock()
	defer o.mu.Unlock()
	for name := range o.ports {
		series := o.samples[name]
		if len(series) > 0 && series[len(series)-1].Connections == counts[name] {
			continue
		}
		o.samples[name] = append(series, Sample{At: at, Connections: counts[name]})
	}
}

// countEstablished counts, per sink name, the /proc/net/tcp entries in
// state 01 (ESTABLISHED) whose local address is 127.0.0.1 at the sink's
// port, which are the server ends of the connections to that sink.
//
// NOTE: the address pattern assumes a little-endian host, where
// /proc/net/tcp shows 127.0.0.1 as 0100007F.
func countEstablished(table string, ports map[string]int) map[string]int {
	byAddress := make(map[string]string, len(ports))
	for name, port := range ports {
		byAddress[fmt.Sprintf("0100007F:%04X", port)] = name
	}
	counts := make(map[string]int, len(ports))
	for line := range strings.Lines(table) {
		fields := strings.Fields(line)
		if len(fields) < 4 || fields[3] != "01" {
			continue
		}
		if name, ok := byAddress[fields[1]]; ok {
			counts[name]++
		}
	}
	return counts
}

// now returns the time since the observer started.
func (o *observer) now() time.Duration {
	return time.Since(o.start)
}

// snapshot returns copies of the lines and samples recorded so far.
func (o *observer) snapshot() ([]LogLine, map[string][]Sample) {
	o.mu.Lock()
	defer o.mu.Unlock()
	samples := make(map[string][]Sample, len(o.samples))
	for name, series := range o.samples {
		samples[name] = append([]Sample(nil), series...)
	}
	return append([]LogLine(nil), o.lines...), samples
}

// stop ends the polling and waits for the polling goroutine to exit.
func (o *observer) stop() {
	close(o.done)
	<-o.stopped
}
