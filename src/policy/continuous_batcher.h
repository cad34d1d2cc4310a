// ContinuousBatcher: iteration-level scheduling of one generating instance (Orca, OSDI'22), over a paged KV cache
// (vLLM's PagedAttention, SOSP'23).
//
// Sequences join and leave at step boundaries. The cache is a pool of fixed-size blocks (`block_tokens` tokens
// each); a sequence holds ceil(tokens / block_tokens) blocks, where its tokens are its prompt and what it has
// generated. At each boundary, Next() decides the next step as vLLM's scheduler does:
//
//   1. Waiting sequences are admitted first come, first served while the batch has room and the pool has the
//      blocks for their tokens plus one (so the first decode step needs no new block); a step that admits any is
//      a prefill of those (a resumed sequence prefills its prompt and what it had generated: recomputation).
//   2. Otherwise the running sequences decode one token each. One about to cross into a new block needs it; when
//      the pool runs short, the youngest running sequence (latest admitted) is preempted: its blocks are freed and
//      it goes back to the front of the queue, to be recomputed later. Preemption never fails a sequence.
//
// Every sequence ends exactly once: Finished after its last token, Refused at Enqueue when its whole length could
// never fit the pool (or is empty), Cancel()ed by its caller. A sequence of one output token finishes with its
// prefill.
//
// Pure: no I/O, no clock; the caller (the simulator, a worker) runs the steps and reports them with Complete().
//
// Thread safety: none; one owner.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace fluidfaas::policy {

struct BatcherOptions {
  int64_t kv_blocks = 0;  // blocks in the pool. REQUIRES: >= 1
  int block_tokens = 16;  // tokens per block (vLLM's default). REQUIRES: >= 1
  int max_batch = 64;     // sequences in one step. REQUIRES: >= 1
  // Chunked prefill (Sarathi-Serve, OSDI'24): 0, off (a step prefills the admitted prompts whole, and running
  // sequences wait); else a step decodes every running sequence and fills the rest of this many tokens with chunks
  // of the prompts being prefilled, so decoding never stalls behind a long prompt. REQUIRES: 0 or >= 1
  int prefill_chunk = 0;
};

struct GenSequence {
  uint64_t id = 0;
  int prompt = 0;  // prompt tokens
  int output = 0;  // tokens to generate, the first one by the prefill
};

struct GenStep {
  enum class Kind { kIdle, kPrefill, kDecode, kMixed };
  Kind kind = Kind::kIdle;
  std::vector<uint64_t> sequences;  // those this step runs whole: prefills (kPrefill) or decodes (kDecode, kMixed)
  std::vector<int> tokens;          // per sequence: tokens it prefills (prompt + generated) or its context (decode)
  // kMixed: chunks of prefills beside the decodes; a chunk that ends its prefill yields its sequence's next token.
  struct Chunk {
    uint64_t sequence = 0;
    int tokens = 0;   // in this chunk
    int context = 0;  // prefilled before it
    bool last = false;
  };
  std::vector<Chunk> chunks;
  std::vector<uint64_t> preempted;  // sent back to the queue to make room for this step
};

class ContinuousBatcher {
 public:
  explicit ContinuousBatcher(BatcherOptions options);

  // False (and nothing kept) when the sequence can never be served here: no tokens, or more than the pool holds.
  bool Enqueue(const GenSequence& s);

  // The next step at a boundary. REQUIRES: the previous step was Completed.
  GenStep Next();

  // The step `Next` gave has run: each of its sequences generated one token. Returns those that finished.
  std::vector<uint64_t> Complete(const GenStep& step);

  // Removes a sequence wherever it is (a client that went away): its blocks are free for the next step. False
  // when unknown. REQUIRES: not in a step that has not Completed.
  bool Cancel(uint64_t id);

  // Whether the next boundary would admit every waiting sequence (room in the batch and the pool).
  bool AdmitsAllWaiting() const;

  size_t waiting() const { return waiting_.size(); }
  size_t running() const { return running_.size(); }
  int64_t free_blocks() const { return options_.kv_blocks - used_blocks_; }
  int64_t used_blocks() const { return used_blocks_; }
  uint64_t preemptions() const { return preemptions_; }
  const BatcherOptions& options() const { return options_; }
  // Blocks `tokens` tokens take.
  int64_t BlocksFor(int64_t tokens) const { return (tokens + options_.block_tokens - 1) / options_.block_tokens; }

 private:
  struct Live {
    GenSequence s;
    int generated = 0;  // tokens generated so far (kept across a preemption)
    int64_t blocks = 0;
    int prefilled = -1;  // chunked prefill: tokens of its (re)prefill done; -1 when prefilled (decoding)
    int Tokens() const { return s.prompt + generated; }
  };
  // Blocks a sequence takes when admitted: its prompt and generated tokens, and the next one's.
  int64_t AdmissionBlocks(const Live& l) const { return BlocksFor(int64_t{l.Tokens()} + 1); }
  void Preempt(size_t running_index, GenStep& step);

  BatcherOptions options_;
  std::deque<Live> waiting_;
  std::vector<Live> running_;  // in admission order: the youngest last
  int64_t used_blocks_ = 0;
  uint64_t preemptions_ = 0;
};

}  // namespace fluidfaas::policy
