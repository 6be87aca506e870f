package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The attribution history's keys of [nat_log].
func TestNatLogHistory(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		c, err := Parse([]byte(minimal), "t.toml")
		require.NoError(t, err)
		assert.Equal(t, "", c.NatLog.History)
		assert.Equal(t, 180*24*time.Hour, c.NatLog.Retention.Duration)
		assert.Equal(t, ByteSize(1<<30), c.NatLog.HistoryMaxSize)
	})
	for _, tc := range []struct {
		retention, size string
		wantRet         time.Duration
		wantSize        ByteSize
	}{
		{`"90d"`, `"512MiB"`, 90 * 24 * time.Hour, 512 << 20},
		{`"1d12h"`, `"500MB"`, 36 * time.Hour, 500_000_000},
		{`"720h"`, `2097152`, 720 * time.Hour, 2 << 20},
		{`"3650d"`, `"1TiB"`, 3650 * 24 * time.Hour, 1 << 40},
		{`"1h"`, `"1048576B"`, time.Hour, 1 << 20},
	} {
		t.Run("valid "+tc.retention+" "+tc.size, func(t *testing.T) {
			c, err := Parse([]byte(minimal+"\n[nat_log]\nhistory = \"/var/lib/natgw/attribution.db\"\nretention = "+tc.retention+"\nhistory_max_size = "+tc.size+"\n"), "t.toml")
			require.NoError(t, err)
			assert.Equal(t, "/var/lib/natgw/attribution.db", c.NatLog.History)
			assert.Equal(t, tc.wantRet, c.NatLog.Retention.Duration)
			assert.Equal(t, tc.wantSize, c.NatLog.HistoryMaxSize)
		})
	}
	for _, tc := range []struct {
		name, section, key, msg string
	}{
		{"relative path", `history = "attribution.db"`, "nat_log.history", "absolute path"},
		{"directory", `history = "/var/lib/natgw/"`, "nat_log.history", "absolute path"},
		{"retention without unit", `retention = 10`, "nat_log.retention", "unit"},
		{"retention not a duration", `retention = "half a year"`, "nat_log.retention", "not a duration"},
		{"retention too short", `retention = "10m"`, "nat_log.retention", "1h to 3650d"},
		{"retention too long", `retention = "3651d"`, "nat_log.retention", "1h to 3650d"},
		{"retention negative", `retention = "-1h"`, "nat_log.retention", "1h to 3650d"},
		{"size unit unknown", `history_max_size = "1 furlong"`, "nat_log.history_max_size", "not a size"},
		{"size fraction", `history_max_size = "1.5GiB"`, "nat_log.history_max_size", "not a size"},
		{"size too small", `history_max_size = "1KiB"`, "nat_log.history_max_size", "1MiB to 1TiB"},
		{"size too large", `history_max_size = "2TiB"`, "nat_log.history_max_size", "1MiB to 1TiB"},
		{"size zero", `history_max_size = 0`, "nat_log.history_max_size", "1MiB to 1TiB"},
		{"unknown key", `histroy = "/x"`, "nat_log.histroy", `did you mean "history"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal+"\n[nat_log]\n"+tc.section+"\n"), "t.toml")
			errs := requireErrors(t, err)
			assert.Equal(t, tc.key, errs[0].Key, "%v", err)
			assert.Contains(t, errs[0].Msg, tc.msg)
		})
	}
}

func TestByteSizeString(t *testing.T) {
	assert.Equal(t, "1GiB", ByteSize(1<<30).String())
	assert.Equal(t, "1536MiB", ByteSize(1536<<20).String())
	assert.Equal(t, "500000KiB", ByteSize(500_000*1024).String())
	assert.Equal(t, "1000B", ByteSize(1000).String())
}
