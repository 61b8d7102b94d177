// ImageNet input pipeline cost per image: JPEG decode (TurboJPEG) and the torchvision-style
// resize (shorter side 256, bilinear antialiased) + centre crop 224. Run on a typical
// ILSVRC-2012 image (500 x 375, quality 90), e.g.
//   /usr/bin/python3 -c "import numpy as np; from PIL import Image; Image.fromarray(np.random.default_rng(0)
//     .integers(0, 256, (375, 500, 3), np.uint8)).save('/tmp/b.JPEG', quality=90)"     (one line)
//   DUALRS_BENCH_JPEG=/tmp/b.JPEG OMP_NUM_THREADS=1 build/bench/bench_data

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>

#include "dualrs/data/jpeg.h"
#include "dualrs/data/transforms.h"

namespace {

std::string bench_jpeg() {
  const char* path = std::getenv("DUALRS_BENCH_JPEG");
  return path == nullptr ? "" : path;
}

void BM_DecodeJpeg(benchmark::State& state) {
  const std::string path = bench_jpeg();
  if (path.empty()) return state.SkipWithError("set DUALRS_BENCH_JPEG to a JPEG file");
  for (auto _ : state) {
    auto image = dualrs::data::read_jpeg_file(path);
    benchmark::DoNotOptimize(image.data_ptr<std::uint8_t>());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_ResizeCenterCrop(benchmark::State& state) {
  const std::string path = bench_jpeg();
  if (path.empty()) return state.SkipWithError("set DUALRS_BENCH_JPEG to a JPEG file");
  const auto image = dualrs::data::read_jpeg_file(path);
  for (auto _ : state) {
    auto out = dualrs::data::resize_and_center_crop(image, 256, 224);
    benchmark::DoNotOptimize(out.data_ptr<float>());
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_DecodeJpeg)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ResizeCenterCrop)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
