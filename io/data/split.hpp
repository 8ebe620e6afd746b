#pragma once

namespace tessera {

/// The two halves of every data source: samples to train on and held-out samples to evaluate on.
enum class Split { train, validation };

}  // namespace tessera
