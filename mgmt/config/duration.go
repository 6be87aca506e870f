package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/BurntSushi/toml"
)

// UnmarshalText parses a Go duration string ("4m", "30s", "1h30m"), which
// may begin with a number of days ("180d", "1d12h"), and marks the
// duration as set. A bare number has no unit and is refused, so that "10"
// is never read as ten nanoseconds.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := parseDuration(string(text))
	if err != nil {
		return fmt.Errorf("%q is not a duration: write a number with a unit, like \"30s\", \"4m\" or \"1h\"", text)
	}
	d.Duration = v
	d.Set = true
	return nil
}

// maxDays bounds the days of a duration (time.Duration holds 292 years).
const maxDays = 100_000

// parseDuration is time.ParseDuration with a leading count of days ("d").
func parseDuration(s string) (time.Duration, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i == len(s) || s[i] != 'd' {
		return time.ParseDuration(s)
	}
	days, err := strconv.Atoi(s[:i])
	if err != nil || days > maxDays {
		return 0, fmt.Errorf("%s: too many days", s)
	}
	v := time.Duration(days) * 24 * time.Hour
	if rest := s[i+1:]; rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil || r < 0 {
			return 0, fmt.Errorf("%s: not a duration after the days", s)
		}
		v += r
	}
	return v, nil
}

// MarshalText writes the duration in Go's format ("4m0s"), which
// UnmarshalText reads back to the same value.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.Duration.String()), nil
}

// fileTimeouts is the [timeouts] table as the file writes it: each timeout
// is whatever TOML value the file has there (nil when the key is left out),
// so that Parse can report every bad one and go on.
type fileTimeouts struct {
	TCPEstablished any  `toml:"tcp_established"`
	TCPTransitory  any  `toml:"tcp_transitory"`
	TCPClosing     any  `toml:"tcp_closing"`
	UDP            any  `toml:"udp"`
	ICMP           any  `toml:"icmp"`
	TCPResetOnIdle bool `toml:"tcp_reset_on_idle"`
}

// decode stores the timeouts of f into t, recording a problem for each one
// that is not a duration string, with its line in text. A timeout that is
// left out or bad stays zero and not Set, so that the default fills it
// and Validate doesn't report it a second time. md tells which keys the
// file has spelled exactly so: the decoder also fills f from keys spelled
// in another case ("UDP"), which are reported as unknown keys instead.
func (f *fileTimeouts) decode(md *toml.MetaData, text string, t *Timeouts, p *problems) {
	for _, d := range []struct {
		name  string
		value any
		dst   *Duration
	}{
		{"tcp_established", f.TCPEstablished, &t.TCPEstablished},
		{"tcp_transitory", f.TCPTransitory, &t.TCPTransitory},
		{"tcp_closing", f.TCPClosing, &t.TCPClosing},
		{"udp", f.UDP, &t.UDP},
		{"icmp", f.ICMP, &t.ICMP},
	} {
		if d.value == nil || !md.IsDefined("timeouts", d.name) {
			continue
		}
		if err := durationValue(d.value, d.dst); err != nil {
			p.errs = append(p.errs, &FieldError{
				Line: durationLine(text, d.name),
				Key:  "timeouts." + d.name,
				Msg:  err.Error(),
			})
		}
	}
	t.TCPResetOnIdle = f.TCPResetOnIdle
}

// durationValue stores the TOML value v into d when it is a duration string
// and returns an error saying what is wrong with it otherwise.
func durationValue(v any, d *Duration) error {
	switch v := v.(type) {
	case string:
		return d.UnmarshalText([]byte(v))
	case int64, float64:
		return fmt.Errorf("%v has no unit: write a duration string with a unit, like \"30s\", \"4m\" or \"1h\"", v)
	case bool:
		return errors.New(`a boolean is not a duration: write a duration string, like "30s", "4m" or "1h"`)
	case []any, []map[string]any:
		return errors.New(`an array is not a duration: write a duration string, like "30s", "4m" or "1h"`)
	case map[string]any:
		return errors.New(`a table is not a duration: write a duration string, like "30s", "4m" or "1h"`)
	default: // the date and time types
		return errors.New(`a date or time is not a duration: write a duration string, like "30s", "4m" or "1h"`)
	}
}

// durationLine returns the line of the timeout name ("udp") in text, or 0
// when the decoder can't say. The decoder knows where each key is but tells
// only in its errors, so text is decoded again into a Duration for that one
// timeout, and the line is taken from the error that gives.
func durationLine(text, name string) int {
	timeouts := reflect.StructOf([]reflect.StructField{{
		Name: "Timeout",
		Type: reflect.TypeFor[Duration](),
		Tag:  reflect.StructTag(`toml:"` + name + `"`),
	}})
	file := reflect.StructOf([]reflect.StructField{{
		Name: "Timeouts",
		Type: timeouts,
		Tag:  `toml:"timeouts"`,
	}})
	_, err := toml.Decode(text, reflect.New(file).Interface())
	if err == nil {
		return 0
	}
	return decodeError(err).Line
}
