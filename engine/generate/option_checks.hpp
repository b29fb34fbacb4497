// The checks of generation options, in one place. Every entry point that takes options runs them
// before any work: Sampler's and Generation's constructors, generate(), Scheduler::submit.
#pragma once

#include "brise/generate.hpp"
#include "brise/model.hpp"
#include "brise/sampler.hpp"

namespace brise {

// brise::Error naming the parameter when a sampler cannot use `params`.
void check_sampling_params(const SamplingParams& params);

// brise::Error naming the problem when `options` cannot run on `model`: the sampling
// parameters, empty stop strings, stop strings on a model without a tokenizer, a constraint
// made for another vocabulary or without stop_at_eos.
void check_generate_options(const GenerateOptions& options, const Model& model);

}  // namespace brise
