package conf

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixedHostname replaces the system host name for one test.
func fixedHostname(t *testing.T, name string) {
	t.Helper()
	saved := hostname
	hostname = func() (string, error) { return name, nil }
	t.Cleanup(func() { hostname = saved })
}

func TestLoad_Defaults(t *testing.T) {
	fixedHostname(t, "mx.example.org")
	dir := writeMainCF(t, "")

	c, err := Load(dir, nil)

	require.NoError(t, err)
	assert.Equal(t, dir, c.ConfigDirectory)
	assert.Equal(t, "/var/spool/postfix", c.QueueDirectory)
	assert.Equal(t, "postfix", c.SyslogName)
	assert.Equal(t, "mx.example.org", c.MyHostname)
	assert.Equal(t, 300*time.Second, c.QueueRunDelay)
	assert.Equal(t, 5*24*time.Hour, c.MaximalQueueLifetime)
	assert.Equal(t, 20000, c.QmgrMessageRecipientLimit)
	assert.Equal(t, []string{"deferred", "defer"}, c.HashQueueNames)
	assert.Empty(t, c.DeferTransports)
	assert.False(t, c.SMTPUTF8Enable, "compatibility_level 0 keeps SMTPUTF8 off")
	assert.Equal(t, "verify", c.VerifyServiceName)
	assert.Empty(t, c.Warnings())

	domain, _ := c.Dict.Lookup("mydomain")
	assert.Equal(t, "example.org", domain)
	raw, _ := c.Dict.Raw("maximal_queue_lifetime")
	assert.Equal(t, "5d", raw, "time defaults enter the dictionary unexpanded")
}

func TestLoad_HostnameWithoutDot(t *testing.T) {
	tests := []struct {
		name string
		text string
		want string
	}{
		{name: "default domain", text: "", want: "box.localdomain"},
		{name: "configured domain", text: "mydomain = example.net\n", want: "box.example.net"},
		{name: "configured hostname", text: "myhostname = mail.example.com\n", want: "mail.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fixedHostname(t, "box")

			c, err := Load(writeMainCF(t, tt.text), nil)

			require.NoError(t, err)
			assert.Equal(t, tt.want, c.MyHostname)
		})
	}
}

func TestLoad_MainCFAndOverrides(t *testing.T) {
	fixedHostname(t, "mx.example.org")
	dir := writeMainCF(t, `
compatibility_level = 3.6
queue_run_delay = 1m
delay = 7
minimal_backoff_time = ${delay}s
defer_transports = smtp, relay
syslog_name = postfix-$multi_instance_name
multi_instance_name = out
qmgr_message_active_limit = 100
`)

	c, err := Load(dir, []string{"queue_run_delay=2m", "maximal_backoff_time = 10m", "process_name=qmgr", "service_name=oqmgr"})

	require.NoError(t, err)
	assert.Equal(t, 2*time.Minute, c.QueueRunDelay, "-o wins over main.cf")
	assert.Equal(t, 7*time.Second, c.MinimalBackoffTime)
	assert.Equal(t, 10*time.Minute, c.MaximalBackoffTime)
	assert.Equal(t, []string{"smtp", "relay"}, c.DeferTransports)
	assert.Equal(t, "postfix-out", c.SyslogName)
	assert.True(t, c.SMTPUTF8Enable, "compatibility_level 3.6 turns SMTPUTF8 on")
	assert.Equal(t, 100, c.QmgrMessageActiveLimit)
	assert.Equal(t, "qmgr", c.ProcessName)
	assert.Equal(t, "oqmgr", c.ServiceName)
}

func TestLoad_Warnings(t *testing.T) {
	fixedHostname(t, "mx.example.org")
	dir := writeMainCF(t, `
qmgr_message_active_limit = 500
qmgr_message_recipient_limit = 100
maximal_queue_lifetime = 1d
bounce_queue_lifetime = 2d
hash_queue_depth = 1
hash_queue_depth = 2
`)

	c, err := Load(dir, nil)

	require.NoError(t, err)
	assert.Equal(t, []string{
		dir + "/main.cf, line 7: overriding earlier entry: hash_queue_depth=1",
		"qmgr_message_recipient_limit is smaller than qmgr_message_active_limit - adjusting qmgr_message_recipient_limit",
		"bounce_queue_lifetime is larger than maximal_queue_lifetime - adjusting bounce_queue_lifetime",
	}, c.Warnings())
	assert.Equal(t, 500, c.QmgrMessageRecipientLimit)
	assert.Equal(t, 24*time.Hour, c.BounceQueueLifetime)
}

func TestLoad_InvalidValues(t *testing.T) {
	tests := []struct {
		name      string
		text      string
		overrides []string
		want      string // DIR stands for the config directory
	}{
		{name: "time unit", text: "queue_run_delay = 5y\n",
			want: "parameter queue_run_delay: bad time value or unit: 5y"},
		{name: "time minimum", text: "transport_retry_time = 0\n",
			want: "invalid transport_retry_time: 0 (min 1)"},
		{name: "lifetime maximum", text: "maximal_queue_lifetime = 101d\n",
			want: "invalid maximal_queue_lifetime: 8726400 (max 8640000)"},
		{name: "in_flow_delay maximum", text: "in_flow_delay = 11s\n",
			want: "invalid in_flow_delay: 11 (max 10)"},
		{name: "int", text: "qmgr_message_active_limit = many\n",
			want: "bad numerical configuration: qmgr_message_active_limit = many"},
		{name: "fudge factor", text: "qmgr_fudge_factor = 5\n",
			want: "invalid qmgr_fudge_factor parameter value 5 < 10"},
		{name: "bool", text: "disable_verp_bounces = maybe\n",
			want: "bad boolean configuration: disable_verp_bounces = maybe"},
		{name: "empty feedback", text: "default_destination_concurrency_positive_feedback =\n",
			want: "bad string length 0 < 1: default_destination_concurrency_positive_feedback = "},
		{name: "facility", text: "syslog_facility = mailx\n",
			want: "file DIR/main.cf: parameter syslog_facility: unrecognized value: mailx"},
		{name: "hostname", text: "myhostname = bad..name\n",
			want: "file DIR/main.cf: parameter myhostname: bad parameter value: bad..name"},
		{name: "compatibility level", text: "compatibility_level = three\n",
			want: `malformed compatibility level syntax: "three"`},
		{name: "address format", text: "info_log_address_format = mixed\n",
			want: `invalid parameter setting "info_log_address_format = mixed"`},
		{name: "macro syntax", text: "queue_run_delay = ${oops\n",
			want: `parameter queue_run_delay: truncated macro reference: "${oops"`},
		{name: "override syntax", overrides: []string{"queue_run_delay"},
			want: `invalid "-o queue_run_delay" option value: missing '=' after attribute name`},
		{name: "override value", overrides: []string{"qmgr_ipc_timeout=0"},
			want: "invalid qmgr_ipc_timeout: 0 (min 1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fixedHostname(t, "mx.example.org")
			dir := writeMainCF(t, tt.text)

			_, err := Load(dir, tt.overrides)

			require.Error(t, err)
			assert.Equal(t, replaceDir(tt.want, dir), err.Error())
		})
	}
}

func replaceDir(text, dir string) string {
	if len(text) > 8 && text[:8] == "file DIR" {
		return "file " + dir + text[8:]
	}
	return text
}

func TestLoad_MissingMainCF(t *testing.T) {
	_, err := Load(t.TempDir(), nil)

	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestLoad_HostnameFailure(t *testing.T) {
	saved := hostname
	hostname = func() (string, error) { return "", errors.New("no name") }
	t.Cleanup(func() { hostname = saved })

	_, err := Load(writeMainCF(t, ""), nil)
	require.Error(t, err)
	assert.Equal(t, "gethostname: no name", err.Error())

	c, err := Load(writeMainCF(t, "myhostname = set.example\n"), nil)
	require.NoError(t, err, "a configured myhostname needs no system host name")
	assert.Equal(t, "set.example", c.MyHostname)
}

func TestValidHostname(t *testing.T) {
	valid := []string{"a", "mx.example.org", "a-b.c_d", "1a.2", "xn--bcher-kva.example"}
	invalid := []string{"", "a..b", ".a", "a.", "-a", "a-", "a-.b", "123", "1.2.3.4", "a b", "a/b"}
	for _, name := range valid {
		assert.True(t, validHostname(name), "validHostname(%q)", name)
	}
	for _, name := range invalid {
		assert.False(t, validHostname(name), "validHostname(%q)", name)
	}
	long := strings.Repeat("a", 64)
	assert.False(t, validHostname(long), "label of 64 bytes")
	assert.True(t, validHostname(long[:63]), "label of 63 bytes")
}
