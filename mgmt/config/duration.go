package config

import (
	"fmt"
	"time"
)

// UnmarshalText parses a Go duration string ("4m", "30s", "1h30m") and marks
// the duration as set. A bare number has no unit and is refused, so that
// "10" is never read as ten nanoseconds.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("%q is not a duration: write a number with a unit, like \"30s\", \"4m\" or \"1h\"", text)
	}
	d.Duration = v
	d.Set = true
	return nil
}

// MarshalText writes the duration in Go's format ("4m0s"), which
// UnmarshalText reads back to the same value.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.Duration.String()), nil
}
