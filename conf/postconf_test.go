package conf

// Differential tests: the same main.cf is read by this package and by the
// installed Postfix postconf(1), and the results must agree.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const postconfPath = "/usr/sbin/postconf"

// testMasterCF declares the services whose per-transport parameters
// postconf should know about.
const testMasterCF = `smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
local     unix  -       n       n       -       -       local
`

func requirePostconf(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(postconfPath); err != nil {
		t.Skipf("differential test needs Postfix's postconf at %s: %v", postconfPath, err)
	}
}

// runPostconf runs postconf with the given arguments and returns its
// standard output split into lines, and its standard error.
func runPostconf(t *testing.T, args ...string) ([]string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(postconfPath, args...)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	return strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n"), stderr.String(), err
}

// writeConfigDir writes main.cf and a small master.cf for postconf.
func writeConfigDir(t *testing.T, mainCF string) string {
	t.Helper()
	dir := writeMainCF(t, mainCF)
	path := filepath.Join(dir, "master.cf")
	require.NoError(t, os.WriteFile(path, []byte(testMasterCF), 0o644))
	// postconf, like main.cf readers, pauses on a recently changed file.
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(path, old, old))
	return dir
}

// normalizeSpace collapses whitespace runs, because postconf folds the
// whitespace of the values it prints.
func normalizeSpace(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func TestPostconf_Expansion(t *testing.T) {
	requirePostconf(t)
	defined := `one = 1
empty =
name = value
level = 3.6
chain1 = $chain2
chain2 = ${chain3}!
chain3 = end
`
	cases := []string{
		"$name ${name} $(name)",
		"$$name $$ x$$",
		"$undefined|${undefined}",
		"$chain1",
		"${name?yes}|${empty?yes}|${undefined?yes}",
		"${name:no}|${empty:no}|${undefined:no}",
		"${name?{yes}:{no}}|${empty?{yes}:{no}}",
		"${name ? {yes} : {no}}",
		"${name?{$one}:{$name}}|${empty?{$one}:{$name}}",
		"${name?x:y}",
		"${empty?{yes}:no}",
		"${name?{a{b}c}}",
		"$(name?(x))",
		"${{a} == {a}}|${{a} == {b}}",
		"${{$one} == {1} ? {eq} : {ne}}",
		"${{a} != {b} ? {ne}}",
		"${{10} > {9} ? {numeric}:{text}}",
		"${{10} > {9z} ? {numeric}:{text}}",
		"${{010} == {10}}",
		"${{} == {}}|${{} < {0}}",
		"${{2} <= {2}}|${{3} <= {2}}|${{2} >= {3}}|${{3} >= {2}}",
		"${{b} < {a}}|${{a} < {b}}",
		"${{$level} <level {3.10}}|${{$level} >level {3}}|${{3.6} ==level {3.6.0}}",
		"${{2} <level {10}}|${{2} < {10}}|${{2} < {10x}}",
		"${{a}=={a}?yes:no}",
		"${name:{$}}",
		"$myhostname|$mydomain|$syslog_name|$queue_directory|$mail_version",
		"$relay_domains|$fast_flush_domains|$smtputf8_enable",
		"${multi_instance_name?{$multi_instance_name}:{postfix}}",
		"$queue_run_delay $bounce_queue_lifetime $qmgr_fudge_factor $helpful_warnings",
	}

	var mainCF strings.Builder
	mainCF.WriteString(defined)
	var names []string
	for i, text := range cases {
		name := fmt.Sprintf("case_%02d", i)
		names = append(names, name)
		fmt.Fprintf(&mainCF, "%s = %s\n", name, text)
	}
	// postconf prints only the parameters it recognizes. A $name reference
	// from a recognized parameter makes a user-defined name recognized.
	fmt.Fprintf(&mainCF, "alias_maps = $%s\n", strings.Join(names, " $"))
	dir := writeConfigDir(t, mainCF.String())

	want, stderr, err := runPostconf(t, append([]string{"-c", dir, "-h", "-x"}, names...)...)
	require.NoError(t, err, "postconf: %s", stderr)
	require.Len(t, want, len(names), "postconf output: %q", want)

	c, err := Load(dir, nil)
	require.NoError(t, err)
	for i, name := range names {
		got, ok, err := c.Dict.Eval(name)
		require.NoError(t, err, "%s = %s", name, cases[i])
		assert.True(t, ok)
		assert.Equal(t, normalizeSpace(want[i]), normalizeSpace(got), "%s = %s", name, cases[i])
	}
}

func TestPostconf_ExpansionErrors(t *testing.T) {
	requirePostconf(t)
	cases := []struct {
		text   string
		detail string
	}{
		{text: "${oops", detail: `truncated macro reference: "${oops"`},
		{text: "a $ b", detail: `empty macro name: "a $ b"`},
		{text: "${na-me}", detail: `attribute name syntax error at: "...na>>>-me"`},
		{text: "${{a} = {b}}", detail: `"==" or "!="" or "<"" or "<="" or ">="" or ">" expected at: "...a}>>>= {b}"`},
		{text: "${{a} == b}", detail: `"{expression}" expected at: "...{a} ==>>> b"`},
		{text: "${{a} ==foo {b}}", detail: `bad operator suffix at: "...==>>>foo"`},
		{text: "${{x} <level {1}}", detail: `malformed compatibility level syntax: "x"`},
		{text: "$self", detail: `unreasonable macro call nesting: "self"`},
	}
	for _, tt := range cases {
		t.Run(tt.text, func(t *testing.T) {
			// postconf pauses a second before it exits on a fatal error.
			t.Parallel()
			dir := writeConfigDir(t, "self = $self\nbroken = "+tt.text+"\nalias_maps = $broken\n")

			_, stderr, err := runPostconf(t, "-c", dir, "-h", "-x", "broken")
			require.Error(t, err, "postconf must reject %q", tt.text)
			require.Contains(t, stderr, "postconf: warning: "+tt.detail+"\n")

			d, err := ReadMainCF(filepath.Join(dir, "main.cf"))
			require.NoError(t, err)
			_, _, err = d.Eval("broken")
			var expandErr *ExpandError
			require.ErrorAs(t, err, &expandErr)
			assert.Equal(t, tt.detail, expandErr.Detail)
		})
	}
}

func TestPostconf_MainCFSyntax(t *testing.T) {
	requirePostconf(t)
	text := "  dropped = line\n" +
		"# leading comment\n" +
		"mydestination = a,\n  b\n# comment inside\n\n   # indented comment\n\tc\n" +
		"myorigin=x # literal hash\n" +
		"alias_maps = one\r\n" +
		"  continued = line\n" +
		"relayhost = first\n" +
		"relayhost = second\n" +
		"mynetworks = 127.0.0.0/8\n    [::1]/128"
	dir := writeConfigDir(t, text)
	names := []string{"mydestination", "myorigin", "alias_maps", "relayhost", "mynetworks"}

	want, stderr, err := runPostconf(t, append([]string{"-c", dir, "-h"}, names...)...)
	require.NoError(t, err, "postconf: %s", stderr)
	require.Len(t, want, len(names))

	d, err := ReadMainCF(filepath.Join(dir, "main.cf"))
	require.NoError(t, err)
	for i, name := range names {
		got, ok := d.Raw(name)
		assert.True(t, ok, name)
		assert.Equal(t, normalizeSpace(want[i]), normalizeSpace(got), name)
	}
	for _, warning := range d.Warnings() {
		assert.Contains(t, stderr, "postconf: warning: "+warning+"\n")
	}
	assert.Len(t, d.Warnings(), 2)
}

func TestPostconf_MissingEquals(t *testing.T) {
	requirePostconf(t)
	dir := writeConfigDir(t, "myorigin = x\n\n# c\nbogus value\n  more\n")

	_, stderr, err := runPostconf(t, "-c", dir, "-h", "myorigin")
	require.Error(t, err)

	_, ourErr := ReadMainCF(filepath.Join(dir, "main.cf"))
	require.Error(t, ourErr)
	assert.Contains(t, stderr, "postconf: fatal: "+ourErr.Error()+"\n")
}

func TestPostconf_Override(t *testing.T) {
	requirePostconf(t)
	dir := writeConfigDir(t, "myorigin = file\n")

	want, stderr, err := runPostconf(t, "-c", dir, "-o", "myorigin =  from -o ", "-h", "myorigin")
	require.NoError(t, err, "postconf: %s", stderr)

	d, err := ReadMainCF(filepath.Join(dir, "main.cf"))
	require.NoError(t, err)
	require.NoError(t, d.Override("myorigin =  from -o "))
	got, _ := d.Raw("myorigin")
	assert.Equal(t, want[0], got)
}

// typedField pairs a parameter with a check that parses postconf's text for
// it by the parameter's type and compares the result with the Config field.
type typedField struct {
	param string
	check func(t *testing.T, c *Config, postconfValue string)
}

func durationField(get func(*Config) time.Duration) func(*testing.T, *Config, string) {
	return func(t *testing.T, c *Config, value string) {
		seconds, ok := parseTime(value, 's')
		require.True(t, ok, "postconf value %q", value)
		assert.Equal(t, time.Duration(seconds)*time.Second, get(c))
	}
}

func intField(get func(*Config) int) func(*testing.T, *Config, string) {
	return func(t *testing.T, c *Config, value string) {
		n, err := strconv.Atoi(value)
		require.NoError(t, err)
		assert.Equal(t, n, get(c))
	}
}

func boolField(get func(*Config) bool) func(*testing.T, *Config, string) {
	return func(t *testing.T, c *Config, value string) {
		assert.Equal(t, value == "yes", get(c))
	}
}

func stringField(get func(*Config) string) func(*testing.T, *Config, string) {
	return func(t *testing.T, c *Config, value string) {
		assert.Equal(t, value, get(c))
	}
}

func listField(get func(*Config) []string) func(*testing.T, *Config, string) {
	return func(t *testing.T, c *Config, value string) {
		assert.Equal(t, splitList(value), get(c))
	}
}

var typedFields = []typedField{
	{"queue_directory", stringField(func(c *Config) string { return c.QueueDirectory })},
	{"daemon_directory", stringField(func(c *Config) string { return c.DaemonDirectory })},
	{"mail_owner", stringField(func(c *Config) string { return c.MailOwner })},
	{"syslog_name", stringField(func(c *Config) string { return c.SyslogName })},
	{"syslog_facility", stringField(func(c *Config) string { return c.SyslogFacility })},
	{"maillog_file", stringField(func(c *Config) string { return c.MaillogFile })},
	{"postlog_service_name", stringField(func(c *Config) string { return c.PostlogServiceName })},
	{"myhostname", stringField(func(c *Config) string { return c.MyHostname })},
	{"queue_run_delay", durationField(func(c *Config) time.Duration { return c.QueueRunDelay })},
	{"minimal_backoff_time", durationField(func(c *Config) time.Duration { return c.MinimalBackoffTime })},
	{"maximal_backoff_time", durationField(func(c *Config) time.Duration { return c.MaximalBackoffTime })},
	{"maximal_queue_lifetime", durationField(func(c *Config) time.Duration { return c.MaximalQueueLifetime })},
	{"bounce_queue_lifetime", durationField(func(c *Config) time.Duration { return c.BounceQueueLifetime })},
	{"transport_retry_time", durationField(func(c *Config) time.Duration { return c.TransportRetryTime })},
	{"qmgr_clog_warn_time", durationField(func(c *Config) time.Duration { return c.QmgrClogWarnTime })},
	{"default_transport_rate_delay", durationField(func(c *Config) time.Duration { return c.DefaultTransportRateDelay })},
	{"default_destination_rate_delay", durationField(func(c *Config) time.Duration { return c.DefaultDestinationRateDelay })},
	{"qmgr_daemon_timeout", durationField(func(c *Config) time.Duration { return c.QmgrDaemonTimeout })},
	{"qmgr_ipc_timeout", durationField(func(c *Config) time.Duration { return c.QmgrIPCTimeout })},
	{"daemon_timeout", durationField(func(c *Config) time.Duration { return c.DaemonTimeout })},
	{"in_flow_delay", durationField(func(c *Config) time.Duration { return c.InFlowDelay })},
	{"ipc_idle", durationField(func(c *Config) time.Duration { return c.IPCIdle })},
	{"ipc_ttl", durationField(func(c *Config) time.Duration { return c.IPCTTL })},
	{"qmgr_message_active_limit", intField(func(c *Config) int { return c.QmgrMessageActiveLimit })},
	{"qmgr_message_recipient_limit", intField(func(c *Config) int { return c.QmgrMessageRecipientLimit })},
	{"qmgr_fudge_factor", intField(func(c *Config) int { return c.QmgrFudgeFactor })},
	{"initial_destination_concurrency", intField(func(c *Config) int { return c.InitialDestinationConcurrency })},
	{"default_destination_concurrency_limit", intField(func(c *Config) int { return c.DefaultDestinationConcurrencyLimit })},
	{"default_destination_recipient_limit", intField(func(c *Config) int { return c.DefaultDestinationRecipientLimit })},
	{"default_destination_concurrency_failed_cohort_limit", intField(func(c *Config) int { return c.DefaultDestinationConcurrencyFailedCohortLimit })},
	{"default_destination_concurrency_positive_feedback", stringField(func(c *Config) string { return c.DefaultDestinationConcurrencyPositiveFeedback })},
	{"default_destination_concurrency_negative_feedback", stringField(func(c *Config) string { return c.DefaultDestinationConcurrencyNegativeFeedback })},
	{"destination_concurrency_feedback_debug", boolField(func(c *Config) bool { return c.DestinationConcurrencyFeedbackDebug })},
	{"defer_transports", listField(func(c *Config) []string { return c.DeferTransports })},
	{"default_filter_nexthop", stringField(func(c *Config) string { return c.DefaultFilterNexthop })},
	{"disable_verp_bounces", boolField(func(c *Config) bool { return c.DisableVERPBounces })},
	{"confirm_delay_cleared", boolField(func(c *Config) bool { return c.ConfirmDelayCleared })},
	{"helpful_warnings", boolField(func(c *Config) bool { return c.HelpfulWarnings })},
	{"smtputf8_enable", boolField(func(c *Config) bool { return c.SMTPUTF8Enable })},
	{"owner_request_special", boolField(func(c *Config) bool { return c.OwnerRequestSpecial })},
	{"address_verify_pending_request_limit", intField(func(c *Config) int { return c.AddressVerifyPendingRequestLimit })},
	{"double_bounce_sender", stringField(func(c *Config) string { return c.DoubleBounceSender })},
	{"recipient_delimiter", stringField(func(c *Config) string { return c.RecipientDelimiter })},
	{"hash_queue_names", listField(func(c *Config) []string { return c.HashQueueNames })},
	{"hash_queue_depth", intField(func(c *Config) int { return c.HashQueueDepth })},
	{"default_process_limit", intField(func(c *Config) int { return c.DefaultProcessLimit })},
	{"rewrite_service_name", stringField(func(c *Config) string { return c.RewriteServiceName })},
	{"bounce_service_name", stringField(func(c *Config) string { return c.BounceServiceName })},
	{"defer_service_name", stringField(func(c *Config) string { return c.DeferServiceName })},
	{"trace_service_name", stringField(func(c *Config) string { return c.TraceServiceName })},
	{"address_verify_service_name", stringField(func(c *Config) string { return c.VerifyServiceName })},
	{"flush_service_name", stringField(func(c *Config) string { return c.FlushServiceName })},
	{"queue_service_name", stringField(func(c *Config) string { return c.QueueServiceName })},
	{"info_log_address_format", stringField(func(c *Config) string { return c.InfoLogAddressFormat })},
	{"delay_logging_resolution_limit", intField(func(c *Config) int { return c.DelayLoggingResolutionLimit })},
	{"verp_delimiter_filter", stringField(func(c *Config) string { return c.VERPDelimiterFilter })},
}

func TestPostconf_Defaults(t *testing.T) {
	requirePostconf(t)
	dir := writeConfigDir(t, "")
	names := make([]string, len(typedFields))
	for i, field := range typedFields {
		names[i] = field.param
	}

	want, stderr, err := runPostconf(t, append([]string{"-c", dir, "-d", "-h", "-x"}, names...)...)
	require.NoError(t, err, "postconf: %s", stderr)
	require.Len(t, want, len(names), "postconf output: %q", want)

	c, err := Load(dir, nil)
	require.NoError(t, err)
	for i, field := range typedFields {
		t.Run(field.param, func(t *testing.T) {
			field.check(t, c, want[i])
		})
	}
}

func TestPostconf_TransportDefaults(t *testing.T) {
	requirePostconf(t)
	for _, transport := range []string{"smtp", "relay", "local"} {
		t.Run(transport, func(t *testing.T) {
			dir := writeConfigDir(t, "")
			suffixes := []string{
				"_destination_concurrency_limit", "_destination_recipient_limit",
				"_initial_destination_concurrency", "_destination_concurrency_failed_cohort_limit",
				"_destination_rate_delay", "_transport_rate_delay",
			}
			var names []string
			for _, suffix := range suffixes {
				names = append(names, transport+suffix)
			}

			want, stderr, err := runPostconf(t, append([]string{"-c", dir, "-d", "-h", "-x"}, names...)...)
			require.NoError(t, err, "postconf: %s", stderr)
			require.Len(t, want, len(names))

			c, err := Load(dir, nil)
			require.NoError(t, err)
			limits, _, err := c.Transport(transport)
			require.NoError(t, err)

			concurrency, _ := strconv.Atoi(want[0])
			initial, _ := strconv.Atoi(want[2])
			if concurrency != 0 && concurrency < initial {
				initial = concurrency
			}
			assert.Equal(t, want[0], strconv.Itoa(limits.ConcurrencyLimit))
			assert.Equal(t, want[1], strconv.Itoa(limits.RecipientLimit))
			assert.Equal(t, initial, limits.InitialConcurrency)
			assert.Equal(t, want[3], strconv.Itoa(limits.FailedCohortLimit))
			assert.Equal(t, want[4], fmt.Sprintf("%ds", seconds(limits.DestinationRateDelay)))
			assert.Equal(t, want[5], fmt.Sprintf("%ds", seconds(limits.TransportRateDelay)))
		})
	}
}
