package auth_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/auditbus/auditbus/pkg/auth"
	"github.com/golang-jwt/jwt/v5"
)

// A handler behind Require: a token with the scope passes and the handler
// sees who sent it; a request without a token gets 401 and a JSON error.
func Example() {
	// The daemon calls auth.ConfigFromEnv(); the test builds the Config.
	secret := []byte("an example secret of at least 32 bytes")
	v, err := auth.New(auth.Config{Keys: []auth.Key{{Material: secret}}, Leeway: auth.DefaultLeeway})
	if err != nil {
		log.Fatal(err)
	}
	ingest := v.Require(auth.ScopeEventsWrite)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		fmt.Println("accepted from", p.Subject)
		w.WriteHeader(http.StatusAccepted)
	}))

	token, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "svc-checkout", "scope": "events:write", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(secret)
	req := httptest.NewRequest(http.MethodPost, "/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	ingest.ServeHTTP(rec, req)
	fmt.Println(rec.Code)

	rec = httptest.NewRecorder()
	ingest.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/events", nil))
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
	fmt.Print(rec.Body)
	// Output:
	// accepted from svc-checkout
	// 202
	// 401 Bearer realm="auditbus", scope="events:write"
	// {"error":{"code":"unauthorized","message":"this endpoint needs a bearer token: send the header Authorization: Bearer <token>"}}
}

func ExampleCheckListen() {
	fmt.Println(auth.CheckListen("127.0.0.1:8080", false, false))
	fmt.Println(auth.CheckListen("0.0.0.0:8080", false, false) != nil)
	fmt.Println(auth.CheckListen("0.0.0.0:8080", false, true))
	// Output:
	// <nil>
	// true
	// <nil>
}
