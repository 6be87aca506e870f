package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNatLogParse(t *testing.T) {
	t.Run("left out: blocks, no collector", func(t *testing.T) {
		c, err := Parse([]byte(minimal), "test.toml")
		require.NoError(t, err)
		assert.Equal(t, []string{"blocks"}, c.NatLog.Events)
		assert.Empty(t, c.NatLog.IPFIX)
		assert.Empty(t, c.NatLog.Syslog)
	})
	t.Run("everything", func(t *testing.T) {
		c, err := Parse([]byte(minimal+`
[nat_log]
ipfix = ["192.0.2.10:4739", "collector.example:2055"]
syslog = "tcp://192.0.2.11:6514"
events = ["blocks", "sessions", "exhaustion"]
`), "test.toml")
		require.NoError(t, err)
		assert.Equal(t, []string{"192.0.2.10:4739", "collector.example:2055"}, c.NatLog.IPFIX)
		assert.Equal(t, "tcp://192.0.2.11:6514", c.NatLog.Syslog)
		assert.True(t, c.NatLog.Has("sessions"))
	})
	t.Run("unknown key and empty events", func(t *testing.T) {
		_, err := Parse([]byte(minimal+`
[nat_log]
ipfx = ["192.0.2.10:4739"]
events = []
`), "test.toml")
		errs := requireErrors(t, err)
		assert.Equal(t, []string{"nat_log.ipfx", "nat_log.events"}, errs.Keys())
	})
}

func TestNatLogValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		n    NatLog
		keys []string
		msg  string
	}{
		{"valid", NatLog{IPFIX: []string{"192.0.2.1:4739", "[2001:db8::1]:4739"}, Syslog: "udp://192.0.2.2:514", Events: []string{"blocks"}}, nil, ""},
		{"no port", NatLog{IPFIX: []string{"192.0.2.1"}, Events: []string{"blocks"}}, []string{"nat_log.ipfix[0]"}, "not host:port"},
		{"port 0", NatLog{IPFIX: []string{"192.0.2.1:0"}, Events: []string{"blocks"}}, []string{"nat_log.ipfix[0]"}, "port"},
		{"port name", NatLog{IPFIX: []string{"192.0.2.1:ipfix"}, Events: []string{"blocks"}}, []string{"nat_log.ipfix[0]"}, "port"},
		{"no host", NatLog{IPFIX: []string{":4739"}, Events: []string{"blocks"}}, []string{"nat_log.ipfix[0]"}, "no host"},
		{"twice", NatLog{IPFIX: []string{"192.0.2.1:4739", "192.0.2.1:4739"}, Events: []string{"blocks"}}, []string{"nat_log.ipfix[1]"}, "twice"},
		{"syslog scheme", NatLog{Syslog: "192.0.2.2:514", Events: []string{"blocks"}}, []string{"nat_log.syslog"}, "udp://host:port"},
		{"syslog tls", NatLog{Syslog: "tls://192.0.2.2:6514", Events: []string{"blocks"}}, []string{"nat_log.syslog"}, "udp://host:port"},
		{"syslog port", NatLog{Syslog: "tcp://192.0.2.2:99999", Events: []string{"blocks"}}, []string{"nat_log.syslog"}, "port"},
		{"event unknown", NatLog{Events: []string{"blocks", "flows"}}, []string{"nat_log.events[1]"}, `"flows": must be one of`},
		{"event twice", NatLog{Events: []string{"sessions", "sessions"}}, []string{"nat_log.events[1]"}, "twice"},
		{"events empty", NatLog{Events: []string{}}, []string{"nat_log.events"}, "at least one"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := loadExample(t)
			c.NatLog = tt.n
			c.ApplyDefaults() // the history's retention and size bound
			err := c.Validate()
			if tt.keys == nil {
				assert.NoError(t, err)
				return
			}
			errs := requireErrors(t, err)
			assert.Equal(t, tt.keys, errs.Keys())
			assert.Contains(t, errs[0].Error(), tt.msg)
		})
	}
}
