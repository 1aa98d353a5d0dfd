package reasoning

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	openaioption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

// Provider names.
const (
	// ProviderNone writes deterministic text from templates; no model is called.
	ProviderNone = "none"
	// ProviderOpenAI is any OpenAI-compatible chat completions API: OpenAI,
	// Ollama, vLLM, LiteLLM (set the base URL).
	ProviderOpenAI = "openai"
	// ProviderAzureOpenAI is Azure OpenAI's v1 API: base URL
	// https://<resource>.openai.azure.com/openai/v1/, key sent as api-key.
	ProviderAzureOpenAI = "azure-openai"
	// ProviderAnthropic is the Anthropic Messages API.
	ProviderAnthropic = "anthropic"
)

// Providers lists the provider names, "none" first.
var Providers = []string{ProviderNone, ProviderOpenAI, ProviderAzureOpenAI, ProviderAnthropic}

// Config configures the reasoning step. The zero value with Provider "none"
// needs nothing else.
type Config struct {
	// Provider is one of Providers.
	Provider string
	// Model is the requested model, such as gpt-4.1-mini or claude-sonnet-4-5.
	Model string
	// BaseURL overrides the provider's API endpoint.
	BaseURL string
	// APIKey is the credential. It is never logged nor put in an error.
	APIKey string
	// Timeout bounds each call.
	Timeout time.Duration
	// TokenBudget bounds the input and output tokens of one audit; calls
	// that would exceed it are not made. Zero means 200000.
	TokenBudget int64
	// MaxOutputTokens bounds each answer. Zero means 4096.
	MaxOutputTokens int64
	// MaxRetries is how often the SDK retries a failed call (429, 5xx).
	MaxRetries int
	// HTTPClient, when set, carries the calls (tests use one trusting a
	// test CA).
	HTTPClient *http.Client
}

// LoadKey returns the API key from a file (trailing newline removed) or,
// when file is empty, from the environment variable env. Errors never
// include the key.
func LoadKey(file, env string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read API key file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if env != "" {
		return os.Getenv(env), nil
	}
	return "", nil
}

// check validates the configuration; its errors never include the key.
func (c Config) check() error {
	switch c.Provider {
	case ProviderNone:
		return nil
	case ProviderOpenAI, ProviderAzureOpenAI, ProviderAnthropic:
	default:
		return fmt.Errorf("reasoning provider %q is not supported: want one of %s", c.Provider, strings.Join(Providers, ", "))
	}
	if c.Model == "" {
		return fmt.Errorf("reasoning provider %q needs a model", c.Provider)
	}
	if c.Provider == ProviderAzureOpenAI && c.BaseURL == "" {
		return errors.New("reasoning provider azure-openai needs a base URL (https://<resource>.openai.azure.com/openai/v1/)")
	}
	if c.APIKey == "" && c.BaseURL == "" {
		return fmt.Errorf("reasoning provider %q needs an API key (from a file or an environment variable)", c.Provider)
	}
	return nil
}

// Prompt is one request to a model.
type Prompt struct {
	System    string
	User      string
	MaxTokens int64
}

// Completion is a model's answer with its metering.
type Completion struct {
	Text string
	// ResponseModel is the model that answered, as the provider reports it.
	ResponseModel string
	FinishReason  string
	// Truncated is true when the answer hit the output token limit.
	Truncated                               bool
	InputTokens, OutputTokens, CachedTokens int64
}

// Model is a language model behind one provider's SDK.
type Model interface {
	Complete(ctx context.Context, p Prompt) (Completion, error)
}

// semconvProvider maps a provider to its gen_ai.provider.name.
func semconvProvider(p string) string {
	switch p {
	case ProviderAzureOpenAI:
		return "azure.ai.openai"
	case ProviderAnthropic:
		return "anthropic"
	}
	return "openai"
}

// newModel builds the provider's client.
func newModel(c Config) Model {
	switch c.Provider {
	case ProviderAnthropic:
		opts := []anthropicoption.RequestOption{anthropicoption.WithMaxRetries(c.MaxRetries)}
		if c.APIKey != "" {
			opts = append(opts, anthropicoption.WithAPIKey(c.APIKey))
		}
		if c.BaseURL != "" {
			opts = append(opts, anthropicoption.WithBaseURL(c.BaseURL))
		}
		if c.HTTPClient != nil {
			opts = append(opts, anthropicoption.WithHTTPClient(c.HTTPClient))
		}
		client := anthropic.NewClient(opts...)
		return &anthropicModel{client: &client, model: c.Model}
	default:
		opts := []openaioption.RequestOption{openaioption.WithMaxRetries(c.MaxRetries)}
		switch {
		case c.Provider == ProviderAzureOpenAI:
			opts = append(opts, openaioption.WithHeader("api-key", c.APIKey))
		case c.APIKey != "":
			opts = append(opts, openaioption.WithAPIKey(c.APIKey))
		default:
			opts = append(opts, openaioption.WithAPIKey("none")) // Ollama and vLLM take any key
		}
		if c.BaseURL != "" {
			opts = append(opts, openaioption.WithBaseURL(c.BaseURL))
		}
		if c.HTTPClient != nil {
			opts = append(opts, openaioption.WithHTTPClient(c.HTTPClient))
		}
		client := openai.NewClient(opts...)
		return &openaiModel{client: &client, model: c.Model}
	}
}

type openaiModel struct {
	client *openai.Client
	model  string
}

func (m *openaiModel) Complete(ctx context.Context, p Prompt) (Completion, error) {
	resp, err := m.client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: shared.ChatModel(m.model),
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage(p.System),
			openai.UserMessage(p.User),
		},
		MaxTokens:      openai.Int(p.MaxTokens),
		Temperature:    openai.Float(0),
		ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONObject: &shared.ResponseFormatJSONObjectParam{}},
	})
	if err != nil {
		return Completion{}, err
	}
	c := Completion{
		ResponseModel: resp.Model,
		InputTokens:   resp.Usage.PromptTokens,
		OutputTokens:  resp.Usage.CompletionTokens,
		CachedTokens:  resp.Usage.PromptTokensDetails.CachedTokens,
	}
	if len(resp.Choices) > 0 {
		c.Text = resp.Choices[0].Message.Content
		c.FinishReason = string(resp.Choices[0].FinishReason)
		c.Truncated = c.FinishReason == "length"
	}
	return c, nil
}

type anthropicModel struct {
	client *anthropic.Client
	model  string
}

func (m *anthropicModel) Complete(ctx context.Context, p Prompt) (Completion, error) {
	msg, err := m.client.Messages.New(ctx, anthropic.MessageNewParams{
		Model:     anthropic.Model(m.model),
		MaxTokens: p.MaxTokens,
		System:    []anthropic.TextBlockParam{{Text: p.System}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(p.User))},
	})
	if err != nil {
		return Completion{}, err
	}
	var text strings.Builder
	for _, b := range msg.Content {
		if b.Type == "text" {
			text.WriteString(b.Text)
		}
	}
	return Completion{
		Text:          text.String(),
		ResponseModel: string(msg.Model),
		FinishReason:  string(msg.StopReason),
		Truncated:     msg.StopReason == anthropic.StopReasonMaxTokens,
		InputTokens:   msg.Usage.InputTokens + msg.Usage.CacheReadInputTokens + msg.Usage.CacheCreationInputTokens,
		OutputTokens:  msg.Usage.OutputTokens,
		CachedTokens:  msg.Usage.CacheReadInputTokens,
	}, nil
}

// errorType classifies a failed call for metering, without its message
// (which could echo request details).
func errorType(ctx context.Context, err error) string {
	var oe *openai.Error
	var ae *anthropic.Error
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded:
		return "timeout"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &oe):
		return httpErrorType(oe.StatusCode)
	case errors.As(err, &ae):
		return httpErrorType(ae.StatusCode)
	}
	return "_OTHER"
}

func httpErrorType(code int) string {
	switch {
	case code == http.StatusTooManyRequests:
		return "rate_limited"
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return "unauthorized"
	case code >= 500:
		return "server_error"
	}
	return fmt.Sprintf("http_%d", code)
}
