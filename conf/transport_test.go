package conf

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func loadText(t *testing.T, text string) *Config {
	t.Helper()
	fixedHostname(t, "mx.example.org")
	c, err := Load(writeMainCF(t, text), nil)
	require.NoError(t, err)
	return c
}

func TestTransport_Limits(t *testing.T) {
	tests := []struct {
		name      string
		text      string
		transport string
		want      TransportLimits
	}{
		{
			name: "defaults", transport: "smtp",
			want: TransportLimits{ConcurrencyLimit: 20, RecipientLimit: 50, InitialConcurrency: 5,
				FailedCohortLimit: 1, PositiveFeedback: ConstantFeedback(1), NegativeFeedback: ConstantFeedback(1)},
		},
		{
			name: "local has its own defaults", transport: "local",
			want: TransportLimits{ConcurrencyLimit: 2, RecipientLimit: 1, InitialConcurrency: 2,
				FailedCohortLimit: 1, PositiveFeedback: ConstantFeedback(1), NegativeFeedback: ConstantFeedback(1)},
		},
		{
			name: "global settings apply to every transport", transport: "relay",
			text: "default_destination_concurrency_limit = 7\ndefault_destination_recipient_limit = 0\n" +
				"initial_destination_concurrency = 3\ndefault_transport_rate_delay = 2s\n" +
				"default_destination_concurrency_failed_cohort_limit = 0\n" +
				"default_destination_concurrency_positive_feedback = 1/concurrency\n" +
				"default_destination_concurrency_negative_feedback = 1/4\n",
			want: TransportLimits{ConcurrencyLimit: 7, RecipientLimit: 0, InitialConcurrency: 3,
				TransportRateDelay: 2 * time.Second, FailedCohortLimit: 0,
				PositiveFeedback: Feedback{base: 1, perWindow: true}, NegativeFeedback: ConstantFeedback(0.25)},
		},
		{
			name: "per-transport settings win", transport: "smtp",
			text: "default_destination_concurrency_limit = 7\n" +
				"smtp_destination_concurrency_limit = 3\nsmtp_destination_recipient_limit = 9\n" +
				"smtp_initial_destination_concurrency = 10\nsmtp_transport_rate_delay = 1m\n" +
				"smtp_destination_concurrency_failed_cohort_limit = 4\n" +
				"smtp_destination_concurrency_negative_feedback = 0.5\n",
			want: TransportLimits{ConcurrencyLimit: 3, RecipientLimit: 9, InitialConcurrency: 3,
				TransportRateDelay: time.Minute, FailedCohortLimit: 4,
				PositiveFeedback: ConstantFeedback(1), NegativeFeedback: ConstantFeedback(0.5)},
		},
		{
			name: "destination rate delay forces concurrency 1", transport: "slow",
			text: "slow_destination_rate_delay = 5\n",
			want: TransportLimits{ConcurrencyLimit: 1, RecipientLimit: 50, InitialConcurrency: 1,
				DestinationRateDelay: 5 * time.Second, FailedCohortLimit: 1,
				PositiveFeedback: ConstantFeedback(1), NegativeFeedback: ConstantFeedback(1)},
		},
		{
			name: "zero concurrency limit keeps initial concurrency", transport: "smtp",
			text: "smtp_destination_concurrency_limit = 0\n",
			want: TransportLimits{ConcurrencyLimit: 0, RecipientLimit: 50, InitialConcurrency: 5,
				FailedCohortLimit: 1, PositiveFeedback: ConstantFeedback(1), NegativeFeedback: ConstantFeedback(1)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := loadText(t, tt.text)

			got, warnings, err := c.Transport(tt.transport)

			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Empty(t, warnings)
		})
	}
}

func TestTransport_FeedbackWarnings(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{
			name: "per-transport value",
			text: "smtp_destination_concurrency_positive_feedback = 2\n",
			want: []string{"smtp_destination_concurrency_positive_feedback: ignoring malformed or unreasonable feedback: 2"},
		},
		{
			name: "global value names the global parameter",
			text: "default_destination_concurrency_negative_feedback = 1/0\n",
			want: []string{"default_destination_concurrency_negative_feedback: ignoring malformed or unreasonable feedback: 1/0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := loadText(t, tt.text)

			got, warnings, err := c.Transport("smtp")

			require.NoError(t, err)
			assert.Equal(t, tt.want, warnings)
			assert.Equal(t, ConstantFeedback(1), got.PositiveFeedback)
			assert.Equal(t, ConstantFeedback(1), got.NegativeFeedback)
		})
	}
}

func TestTransport_CachedAfterFirstRead(t *testing.T) {
	c := loadText(t, "smtp_destination_concurrency_positive_feedback = 9\n")

	first, warnings, err := c.Transport("smtp")
	require.NoError(t, err)
	require.Len(t, warnings, 1)
	c.Dict.Set("smtp_destination_concurrency_limit", "99")
	second, warnings, err := c.Transport("smtp")

	require.NoError(t, err)
	assert.Empty(t, warnings, "warnings are reported once")
	assert.Equal(t, first, second, "limits are read once per transport")
}

func TestTransport_DefaultsEnterDictionary(t *testing.T) {
	c := loadText(t, "default_destination_concurrency_limit = 7\nshow = $smtp_destination_concurrency_limit/$smtp_transport_rate_delay\n")

	_, _, err := c.Transport("smtp")
	require.NoError(t, err)

	got, _ := c.Dict.Lookup("show")
	assert.Equal(t, "7/0s", got)
}

func TestTransport_InvalidValues(t *testing.T) {
	tests := []struct {
		text string
		want string
	}{
		{text: "smtp_destination_concurrency_limit = x\n",
			want: "bad numerical configuration: smtp_destination_concurrency_limit = x"},
		{text: "smtp_initial_destination_concurrency = 0\n",
			want: "invalid smtp_initial_destination_concurrency parameter value 0 < 1"},
		{text: "smtp_destination_rate_delay = 1y\n",
			want: "parameter smtp_destination_rate_delay: bad time value or unit: 1y"},
		{text: "smtp_destination_concurrency_positive_feedback =\n",
			want: "bad string length 0 < 1: smtp_destination_concurrency_positive_feedback = "},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			c := loadText(t, tt.text)

			_, _, err := c.Transport("smtp")

			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
		})
	}
}

func TestTransport_ConcurrentCallers(t *testing.T) {
	c := loadText(t, "smtp_destination_concurrency_limit = 4\n")

	var wg sync.WaitGroup
	results := make([]TransportLimits, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _, _ = c.Transport("smtp")
			c.Dict.Lookup("smtp_destination_concurrency_limit")
		}()
	}
	wg.Wait()

	for _, got := range results {
		assert.Equal(t, 4, got.ConcurrencyLimit)
	}
}
