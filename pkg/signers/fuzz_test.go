package signers_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditbus/auditbus/pkg/signers"
)

// FuzzParse: any registry file is loaded or refused with errors that name
// the file, never a panic; a loaded one holds at least one key.
func FuzzParse(f *testing.F) {
	dir := f.TempDir()
	keyPair(f, dir, "shop", "shop-2026")
	f.Add(registry)
	f.Add("signers:\n  - {key_id: a, public_key_file: shop.pub, sources: [/shop, /shop/cart], types: ['*']}\n")
	f.Add("signers:\n  - key_id: a\n    public_key_file: shop.pub\n    sources: [/s]\n    types: [t.]\n    extra: &x [1]\n")
	f.Add("signers: [*x]\n")
	f.Add("---\n---\n")
	name := filepath.Join(dir, "signers.yaml")
	f.Fuzz(func(t *testing.T, data string) {
		r, err := signers.Parse(name, []byte(data))
		if err != nil {
			var ce *signers.ConfigError
			if errors.As(err, &ce) && !strings.HasPrefix(err.Error(), name+": ") {
				t.Errorf("error %q does not start with the file", err)
			}
			return
		}
		if len(r.KeyIDs()) == 0 {
			t.Errorf("loaded a registry without keys from %q", data)
		}
	})
}
