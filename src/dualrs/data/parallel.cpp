#include "dualrs/data/parallel.h"

namespace dualrs::data {
namespace {
thread_local bool t_loader_thread = false;
}  // namespace

bool on_loader_thread() { return t_loader_thread; }

LoaderThreadScope::LoaderThreadScope() : previous_(t_loader_thread) { t_loader_thread = true; }
LoaderThreadScope::~LoaderThreadScope() { t_loader_thread = previous_; }

}  // namespace dualrs::data
