package config

import (
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzParse checks that Parse never panics on arbitrary bytes, that every
// failure is a non-empty Errors, and that an accepted configuration
// validates again and yields its parsed forms without error.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("testdata/example.toml")
	require.NoError(f, err)
	f.Add(example)
	f.Add([]byte(minimal))
	f.Add([]byte(minimal + "[[pool]]\nname = \"p\"\nfrontends = [\"f\"]\nmembers = [\"0.0.0.0/0\"]\n[[frontend]]\nname = \"f\"\naddress = \"198.19.9.9\"\n"))
	f.Add([]byte(minimal + "[timeouts]\nudp = 5\n"))
	f.Add([]byte(minimal + "[default_snat]\n"))
	f.Add([]byte("[[pool]]\n[pool.x.y]\nz = 1\n"))
	f.Add([]byte("[inside\n"))
	f.Add([]byte("\xef\xbb\xbf[Inside]\nPort = 1\n[dataplane\n"))
	f.Add([]byte(minimal + "[timeouts]\nudp = 240\nicmp = {x = 1}\nTCP_CLOSING = \"x\"\n[dataplane]\nworkers = 0\n"))
	f.Add([]byte("Timeouts.udp = [1]\n[[Pool]]\nname = 1\n"))
	f.Add([]byte("a = \"\\u0000\"\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.toml")
		if err != nil {
			var errs Errors
			require.True(t, errors.As(err, &errs), "error %T is not Errors: %v", err, err)
			assert.NotEmpty(t, errs)
			return
		}
		require.NoError(t, c.Validate())
		for i := range c.Pools {
			_, err := c.Pools[i].MemberAddrs()
			assert.NoError(t, err)
			_, err = c.Pools[i].BlockSize()
			assert.NoError(t, err)
			_, err = c.FrontendAddrs(c.Pools[i].Frontends)
			assert.NoError(t, err)
		}
		for _, in := range c.Instances {
			_, err := in.InboundRules()
			assert.NoError(t, err)
		}
		for _, d := range c.Deny {
			_, err := d.Match()
			assert.NoError(t, err)
		}
		if c.DefaultSNAT != nil {
			_, err := c.DefaultSNAT.SourcePrefixes()
			assert.NoError(t, err)
		}
	})
}
