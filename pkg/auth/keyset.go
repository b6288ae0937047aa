package auth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// keySet holds the keys by algorithm, parsed once; choosing a key for a
// token is map look-ups only.
type keySet struct {
	byAlg  map[string]*algKeys
	kidAlg map[string]string // every kid and the algorithm of its key
	algs   string            // the accepted algorithms, for messages
}

// algKeys are the keys of one algorithm.
type algKeys struct {
	byKid map[string]any
	// anon verifies tokens that name no kid, or a kid no key has: one key,
	// or a jwt.VerificationKeySet tried in order; nil when every key has an ID.
	anon any
}

func newKeySet(keys []Key) (*keySet, error) {
	ks := &keySet{byAlg: map[string]*algKeys{}, kidAlg: map[string]string{}}
	anon := map[string][]jwt.VerificationKey{}
	origin := map[string]string{}
	for _, k := range keys {
		alg, err := k.Algorithm()
		if err != nil {
			return nil, err
		}
		a := ks.byAlg[alg]
		if a == nil {
			a = &algKeys{byKid: map[string]any{}}
			ks.byAlg[alg] = a
		}
		if k.ID == "" {
			anon[alg] = append(anon[alg], k.Material)
			continue
		}
		if first, dup := origin[k.ID]; dup {
			return nil, fmt.Errorf("%s: kid %q is also the kid of the key from %s; every kid must name one key", k.name(), k.ID, first)
		}
		origin[k.ID] = k.Origin
		a.byKid[k.ID] = k.Material
		ks.kidAlg[k.ID] = alg
	}
	for alg, list := range anon {
		if len(list) == 1 {
			ks.byAlg[alg].anon = list[0]
		} else {
			ks.byAlg[alg].anon = jwt.VerificationKeySet{Keys: list}
		}
	}
	var algs []string
	for alg := range ks.byAlg {
		algs = append(algs, alg)
	}
	slices.Sort(algs)
	ks.algs = strings.Join(algs, ", ")
	return ks, nil
}

func (ks *keySet) algList() string { return ks.algs }

// keyFor is the jwt.Keyfunc: the token's alg must be one a configured key
// verifies, and only keys of that algorithm are offered, so an HS256 token
// never meets an RSA key used as a secret.
func (ks *keySet) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if _, ok := t.Header["crit"]; ok {
		return nil, newError(ErrUnsupportedAlgorithm, "the token's header lists critical extensions (crit) this server does not understand; send a token without crit", nil)
	}
	kid, ok := t.Header["kid"].(string)
	if !ok && t.Header["kid"] != nil {
		return nil, newError(ErrMalformedToken, "the token's key id (kid) header is not a string", nil)
	}
	a := ks.byAlg[alg]
	if a == nil {
		if alg == jwt.SigningMethodNone.Alg() {
			return nil, newError(ErrUnsupportedAlgorithm, fmt.Sprintf(`the token is unsigned (alg "none"); send a token signed with %s`, ks.algs), nil)
		}
		if other, ok := ks.kidAlg[kid]; ok {
			return nil, wrongAlgorithm(kid, other, alg)
		}
		return nil, newError(ErrUnsupportedAlgorithm, fmt.Sprintf("the token is signed with %q; this server accepts %s", alg, ks.algs), nil)
	}
	if kid != "" {
		if key, ok := a.byKid[kid]; ok {
			return key, nil
		}
		if other, ok := ks.kidAlg[kid]; ok {
			return nil, wrongAlgorithm(kid, other, alg)
		}
		if a.anon == nil {
			return nil, newError(ErrUnknownKey, fmt.Sprintf("the token's key id (kid) %q names no %s key this server trusts; get a token from a trusted issuer, or have its key added", clip(kid), alg), nil)
		}
	}
	if a.anon == nil {
		return nil, newError(ErrUnknownKey, fmt.Sprintf("the token names no key id (kid), and this server picks its %s keys by kid; get a token whose header has the kid of its key", alg), nil)
	}
	return a.anon, nil
}

func wrongAlgorithm(kid, keyAlg, tokenAlg string) *Error {
	return newError(ErrUnsupportedAlgorithm, fmt.Sprintf("the token names key %q, which verifies %s, but says alg %q; the key decides the algorithm", clip(kid), keyAlg, tokenAlg), nil)
}
