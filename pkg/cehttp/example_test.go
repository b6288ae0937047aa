package cehttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/auditbus/auditbus/pkg/cehttp"
	"github.com/cloudevents/sdk-go/v2/event"
)

// An ingest handler: decode every content mode, answer a refusal with its
// status and JSON form.
func ExampleDecode() {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evs, err := cehttp.Decode(r, 1<<20)
		var de *cehttp.Error
		if errors.As(err, &de) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(de.Status)
			_ = json.NewEncoder(w).Encode(de)
			return
		}
		for _, e := range evs {
			fmt.Println("accepted", e.ID(), e.Type(), string(e.Data()))
		}
		w.WriteHeader(http.StatusAccepted)
	})

	r := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(`{"total":12}`))
	r.Header.Set("ce-specversion", "1.0")
	r.Header.Set("ce-id", "42")
	r.Header.Set("ce-source", "/orders")
	r.Header.Set("ce-type", "order.created")
	r.Header.Set("Content-Type", "application/json")
	handler.ServeHTTP(httptest.NewRecorder(), r)

	r = httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(
		`[{"specversion":"1.0","id":"1","source":"/s","type":"t"},{"specversion":"1.0","id":"2","source":"/s"}]`))
	r.Header.Set("Content-Type", cehttp.MediaTypeBatch)
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, r)
	fmt.Print(w.Code, " ", w.Body.String())
	// Output:
	// accepted 42 order.created {"total":12}
	// 400 {"code":"bad_batch_element","message":"batch element 1 (id \"2\"): member \"type\" is missing or empty; CloudEvents 1.0 requires it: send a non-empty string such as com.example.order.created; the whole batch was refused and none of its events was accepted: fix this element and send the batch again","attribute":"type","index":1}
}

// A webhook destination: deliver, and retry only what retrying can fix.
func ExampleWebhook_Send() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			http.Error(w, "who are you?", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	e := event.New()
	e.SetID("42")
	e.SetSource("/orders")
	e.SetType("order.created")

	for _, headers := range []http.Header{{"Authorization": {"Bearer t0k3n"}}, nil} {
		hook, err := cehttp.NewWebhook(cehttp.WebhookConfig{URL: srv.URL, Timeout: 5 * time.Second, Headers: headers})
		if err != nil {
			fmt.Println(err)
			return
		}
		err = hook.Send(context.Background(), &e)
		fmt.Println("delivered:", err == nil, "permanent failure:", cehttp.IsPermanent(err))
	}
	// Output:
	// delivered: true permanent failure: false
	// delivered: false permanent failure: true
}
