// Command build builds the test API server (kube-apiserver) into the
// repository's .cache/kube, if it is not there yet, and prints its path. It
// is what `make kube-apiserver` runs.
package main

import (
	"context"
	"fmt"
	"os"

	"secureaudit.dev/test/kube"
)

func main() {
	bin, err := kube.Binary(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(bin)
}
