package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRunUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no arguments", nil, 2, "usage: benchharness"},
		{"unknown", []string{"frobnicate"}, 2, "unknown subcommand"},
		{"report without a directory", []string{"report"}, 1, "usage: benchharness report"},
		{"testpmd without a pcap", []string{"testpmd"}, 1, "usage: benchharness testpmd"},
		{"bad flag", []string{"report", "-nope"}, 1, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			assert.Equal(t, tt.wantCode, run(tt.args, &out, &errb))
			assert.Contains(t, errb.String(), tt.wantErr)
		})
	}
}
