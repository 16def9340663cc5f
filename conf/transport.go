package conf

// Per-transport limits, read as Postfix 3.7 qmgr_transport_create in
// src/oqmgr/qmgr_transport.c reads them.

import (
	"fmt"
	"time"
)

// TransportLimits are the scheduling limits of one transport (a master.cf
// service name such as "smtp"). Each comes from the parameter named
// transport + suffix, for example smtp_destination_concurrency_limit, or
// else from the matching default_ parameter.
type TransportLimits struct {
	// ConcurrencyLimit is _destination_concurrency_limit; 0 means no limit.
	// It is 1 whenever DestinationRateDelay is positive.
	ConcurrencyLimit int
	// RecipientLimit is _destination_recipient_limit; 0 means no limit.
	RecipientLimit int
	// InitialConcurrency is _initial_destination_concurrency (at least 1),
	// lowered to a smaller non-zero ConcurrencyLimit.
	InitialConcurrency int
	// FailedCohortLimit is _destination_concurrency_failed_cohort_limit.
	FailedCohortLimit int
	// DestinationRateDelay is _destination_rate_delay.
	DestinationRateDelay time.Duration
	// TransportRateDelay is _transport_rate_delay.
	TransportRateDelay time.Duration
	// PositiveFeedback and NegativeFeedback are
	// _destination_concurrency_{positive,negative}_feedback; a malformed
	// value is replaced by the constant 1 with a warning.
	PositiveFeedback, NegativeFeedback Feedback
}

type transportEntry struct {
	limits TransportLimits
}

// Transport returns the limits of the named transport. The first call for a
// name reads the parameters, inserts their defaults into the dictionary and
// returns the warnings Postfix logs for them. Later calls return the cached
// limits and no warnings, because Postfix reads them once per process.
func (c *Config) Transport(name string) (TransportLimits, []string, error) {
	c.transportMu.Lock()
	defer c.transportMu.Unlock()
	if entry, ok := c.transports[name]; ok {
		return entry.limits, nil, nil
	}

	limits, warnings, err := c.readTransport(name)
	if err != nil {
		return TransportLimits{}, nil, err
	}
	if c.transports == nil {
		c.transports = make(map[string]transportEntry)
	}
	c.transports[name] = transportEntry{limits: limits}
	return limits, warnings, nil
}

// readTransport reads the parameters in the order qmgr_transport_create
// does. Each default is the already-resolved global value, inserted as a
// plain number, not as a $default_... reference.
func (c *Config) readTransport(name string) (TransportLimits, []string, error) {
	d := c.Dict
	var limits TransportLimits
	var err error

	if limits.ConcurrencyLimit, err = d.IntParam(name+"_destination_concurrency_limit",
		c.DefaultDestinationConcurrencyLimit, 0, 0); err != nil {
		return limits, nil, err
	}
	if limits.RecipientLimit, err = d.IntParam(name+"_destination_recipient_limit",
		c.DefaultDestinationRecipientLimit, 0, 0); err != nil {
		return limits, nil, err
	}
	if limits.InitialConcurrency, err = d.IntParam(name+"_initial_destination_concurrency",
		c.InitialDestinationConcurrency, 1, 0); err != nil {
		return limits, nil, err
	}
	transportDelay, err := d.timeParamSeconds(name+"_transport_rate_delay", seconds(c.DefaultTransportRateDelay))
	if err != nil {
		return limits, nil, err
	}
	destinationDelay, err := d.timeParamSeconds(name+"_destination_rate_delay", seconds(c.DefaultDestinationRateDelay))
	if err != nil {
		return limits, nil, err
	}
	limits.TransportRateDelay = time.Duration(transportDelay) * time.Second
	limits.DestinationRateDelay = time.Duration(destinationDelay) * time.Second

	if limits.DestinationRateDelay > 0 {
		limits.ConcurrencyLimit = 1
	}
	if limits.ConcurrencyLimit != 0 && limits.ConcurrencyLimit < limits.InitialConcurrency {
		limits.InitialConcurrency = limits.ConcurrencyLimit
	}

	var warnings []string
	var warning string
	limits.PositiveFeedback, warning, err = c.transportFeedback(name, "_destination_concurrency_positive_feedback",
		"default_destination_concurrency_positive_feedback", c.DefaultDestinationConcurrencyPositiveFeedback)
	if err != nil {
		return limits, nil, err
	}
	if warning != "" {
		warnings = append(warnings, warning)
	}
	limits.NegativeFeedback, warning, err = c.transportFeedback(name, "_destination_concurrency_negative_feedback",
		"default_destination_concurrency_negative_feedback", c.DefaultDestinationConcurrencyNegativeFeedback)
	if err != nil {
		return limits, nil, err
	}
	if warning != "" {
		warnings = append(warnings, warning)
	}

	if limits.FailedCohortLimit, err = d.IntParam(name+"_destination_concurrency_failed_cohort_limit",
		c.DefaultDestinationConcurrencyFailedCohortLimit, 0, 0); err != nil {
		return limits, nil, err
	}
	// NOTE: with destination_concurrency_feedback_debug Postfix also logs
	// an info line per feedback value here; callers that want it build it
	// from the returned limits.
	return limits, warnings, nil
}

// transportFeedback reads one feedback parameter. A malformed value gives
// the constant 1 and Postfix's warning, which names the per-transport
// parameter when its value differs from the global one and the global
// parameter otherwise.
func (c *Config) transportFeedback(transport, suffix, globalName, globalValue string) (Feedback, string, error) {
	name := transport + suffix
	value, err := c.Dict.StringParam(name, globalValue, 1, 0)
	if err != nil {
		return Feedback{}, "", err
	}
	feedback, err := ParseFeedback(value)
	if err == nil {
		return feedback, "", nil
	}
	reported := globalName
	if value != globalValue {
		reported = name
	}
	warning := fmt.Sprintf("%s: ignoring malformed or unreasonable feedback: %s", reported, value)
	return ConstantFeedback(1), warning, nil
}

func seconds(d time.Duration) int {
	return int(d / time.Second)
}
