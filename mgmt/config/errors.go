package config

import (
	"strconv"
	"strings"
)

// FieldError is one problem in a configuration, tied to the TOML key it is
// about.
type FieldError struct {
	// Source names the file the configuration came from; empty when the
	// configuration was not parsed from a file (Validate on a Config built
	// in code).
	Source string
	// Line is the line in Source the problem is on, or 0 when the TOML
	// parser does not know it (it only knows it for syntax errors, values
	// of the wrong type and bad timeouts).
	Line int
	// Key is the TOML path of the offending value, with 0-based indexes for
	// arrays: "timeouts.udp", "pool[1].members[2]". It is empty for problems
	// of the file as a whole (a syntax error).
	Key string
	// Msg says what is wrong and, where it helps, what would be right.
	Msg string
}

// Error formats the problem as "source:line: key: msg", leaving out the
// parts that are unknown.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one configuration, in the order of the
// file's sections. A non-empty Errors is what Parse, Load and Validate
// return; they never return an empty one.
type Errors []*FieldError

// Error lists the problems, one per line.
func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, fe := range e {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems as a slice of errors, so errors.As finds a
// *FieldError in an Errors.
func (e Errors) Unwrap() []error {
	errs := make([]error, len(e))
	for i, fe := range e {
		errs[i] = fe
	}
	return errs
}

// Keys returns the Key of every problem, in order. Tests and API clients use
// it to see which values are wrong without matching message text.
func (e Errors) Keys() []string {
	keys := make([]string, len(e))
	for i, fe := range e {
		keys[i] = fe.Key
	}
	return keys
}

// problems collects FieldErrors while a configuration is checked.
type problems struct {
	errs Errors
}

// add records that the value at key is wrong, with msg saying why.
func (p *problems) add(key, msg string) {
	p.errs = append(p.errs, &FieldError{Key: key, Msg: msg})
}

// err returns the collected problems as an error, or nil when there are none.
func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return p.errs
}

// index formats an array element's key: index("pool", 1) is "pool[1]".
func index(key string, i int) string {
	return key + "[" + strconv.Itoa(i) + "]"
}
