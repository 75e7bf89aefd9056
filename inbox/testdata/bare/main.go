// Command bare is the baseline of the capture benchmarks: a net/http server
// whose handler reads the body and answers as a capture does, storing
// nothing. Usage: go run ./inbox/testdata/bare 127.0.0.1:8099
package main

import (
	"io"
	"log"
	"net/http"
	"os"
)

func main() {
	addr := "127.0.0.1:8099"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	log.Fatal(http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`+"\n")
	})))
}
