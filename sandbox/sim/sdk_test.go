package sim

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// sdkClient is the official OpenAI Go client pointed at the simulator. The SDK
// joins relative paths ("chat/completions") onto the base URL, which WithBaseURL
// makes end in "/".
func sdkClient(s *Server, opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(s.URL() + "/"),
		option.WithAPIKey("x"),
		option.WithMaxRetries(0),
	}, opts...)...)
}

func TestOpenAISDK(t *testing.T) {
	s := startServer(t, Config{Models: []string{"sim-candidate", "sim-baseline"}})
	client := sdkClient(s)
	ctx := context.Background()

	t.Run("models", func(t *testing.T) {
		page, err := client.Models.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Data) != 2 || page.Data[0].ID != "sim-candidate" || page.Data[1].ID != "sim-baseline" || page.Data[0].OwnedBy == "" {
			t.Fatalf("models = %+v", page.Data)
		}
		m, err := client.Models.Get(ctx, "sim-baseline")
		if err != nil || m.ID != "sim-baseline" {
			t.Fatalf("get model = %+v, %v", m, err)
		}
	})

	t.Run("completion", func(t *testing.T) {
		res, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: "sim-candidate",
			Messages: []openai.ChatCompletionMessageParamUnion{
				openai.SystemMessage("You are terse."),
				openai.UserMessage("Where is the nearest pharmacy? [sim:pii]"),
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Model != "sim-candidate" || len(res.Choices) != 1 || res.Choices[0].Message.Content != piiText ||
			res.Choices[0].FinishReason != "stop" || string(res.Choices[0].Message.Role) != "assistant" {
			t.Fatalf("completion = %s", res.RawJSON())
		}
		if res.Usage.CompletionTokens != int64(len(appendTokens(nil, piiText))) || res.Usage.PromptTokens != 9 ||
			res.Usage.TotalTokens != res.Usage.PromptTokens+res.Usage.CompletionTokens {
			t.Fatalf("usage = %+v", res.Usage)
		}
	})

	t.Run("completion with max tokens", func(t *testing.T) {
		res, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model:     "any-model",
			Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage("[sim:tokens=20]")},
			MaxTokens: openai.Int(5),
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Model != "any-model" || res.Choices[0].FinishReason != "length" || res.Usage.CompletionTokens != 5 ||
			res.Choices[0].Message.Content != "lorem ipsum dolor sit amet" {
			t.Fatalf("completion = %s", res.RawJSON())
		}
	})

	t.Run("streaming with accumulator", func(t *testing.T) {
		stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
			Model:         "sim-candidate",
			Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("[sim:unsafe] [sim:gap=1ms] help")},
			StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
		})
		acc := openai.ChatCompletionAccumulator{}
		var deltas strings.Builder
		chunks := 0
		finished := ""
		for stream.Next() {
			c := stream.Current()
			if !acc.AddChunk(c) {
				t.Fatalf("accumulator rejected chunk %d: %s", chunks, c.RawJSON())
			}
			if content, ok := acc.JustFinishedContent(); ok {
				finished = content
			}
			if len(c.Choices) > 0 {
				deltas.WriteString(c.Choices[0].Delta.Content)
			}
			chunks++
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		want := len(appendTokens(nil, unsafeText))
		if chunks != want+2 {
			t.Fatalf("%d chunks, want %d tokens + finish + usage", chunks, want)
		}
		if deltas.String() != unsafeText || finished != unsafeText {
			t.Fatalf("deltas %q, finished %q", deltas.String(), finished)
		}
		cc := acc.ChatCompletion
		if len(cc.Choices) != 1 || cc.Choices[0].Message.Content != unsafeText || cc.Choices[0].FinishReason != "stop" ||
			cc.Model != "sim-candidate" || !strings.HasPrefix(cc.ID, "chatcmpl-") {
			t.Fatalf("accumulated = %+v", cc)
		}
		if cc.Usage.CompletionTokens != int64(want) || cc.Usage.PromptTokens != 3 || cc.Usage.TotalTokens != int64(want)+3 {
			t.Fatalf("accumulated usage = %+v", cc.Usage)
		}
	})

	t.Run("streaming cut is an error", func(t *testing.T) {
		stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
			Model:    "sim-candidate",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("[sim:tokens=10][sim:cut=4]")},
		})
		n := 0
		for stream.Next() {
			n++
		}
		if stream.Err() == nil || n != 4 {
			t.Fatalf("%d chunks, err %v; want 4 chunks and an error", n, stream.Err())
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			prompt string
			status int
			code   string
		}{
			{"[sim:error=503]", 503, "simulated_error"},
			{"[sim:error=429]", 429, "simulated_error"},
			{"[sim:tokens=lots]", 400, "invalid_directive"},
		} {
			_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
				Model:    "sim-candidate",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(tc.prompt)},
			})
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("%s: err = %v, want *openai.Error", tc.prompt, err)
			}
			if apiErr.StatusCode != tc.status || apiErr.Code != tc.code || apiErr.Message == "" || apiErr.Type == "" {
				t.Fatalf("%s: error = %d %q %q %q", tc.prompt, apiErr.StatusCode, apiErr.Code, apiErr.Type, apiErr.Message)
			}
		}
		stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
			Model:    "sim-candidate",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("[sim:error=502]")},
		})
		for stream.Next() {
			t.Fatal("chunk from an error response")
		}
		var apiErr *openai.Error
		if !errors.As(stream.Err(), &apiErr) || apiErr.StatusCode != http.StatusBadGateway {
			t.Fatalf("stream error = %v", stream.Err())
		}
	})
}
