package clip_test

import (
	"fmt"

	"github.com/auditbus/auditbus/bus/clip"
)

func ExampleText() {
	fmt.Println(clip.Text("topic", 100))
	fmt.Println(clip.Text("a-parameter-name-far-too-long", 11))
	// Output:
	// topic
	// a-parameter...
}
