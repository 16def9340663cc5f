package bench

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLogCounts_SplitLines(t *testing.T) {
	var c logCounts
	c.add([]byte("Dec  5 08:00:00 h postfix/qmgr[7]: A1: from=<a@example.com>, size=300, nrcpt=1 (queue active)\nDec  5 08:00:00 h postfix/discard[8]: A1: to=<b@example.com>, relay=none, delay=0, status=sent (b)\nDec  5 08:00:00 h postfix/qmgr[7]: A1: rem"))
	assert.Equal(t, 1, c.activated, "activated")
	assert.Equal(t, 1, c.sent, "sent")
	assert.Equal(t, 0, c.removed, "a line not yet complete is not counted")

	c.add([]byte("oved\nDec  5 08:00:01 h postfix/smtp[9]: A2: to=<c@example.com>, status=deferred (x)\n"))
	assert.Equal(t, 1, c.removed, "removed, completed by the second read")
	assert.Equal(t, 1, c.deferred, "deferred")
	assert.Equal(t, 1, c.activated, "activated unchanged")
}
