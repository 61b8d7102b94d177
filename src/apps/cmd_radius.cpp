// dualrs radius: the certificate a vote count gives (Cohen et al. CERTIFY, steps 3-4).

#include <cmath>
#include <iostream>

#include "args.h"
#include "dualrs/core/decision.h"
#include "dualrs/core/error.h"

namespace dualrs::app {

int cmd_radius(const Invocation& inv) {
  po::options_description options("options");
  options.add_options()
      ("count", po::value<long long>()->required(), "n_A: noisy copies (of n) that voted for the top class, 0..n")
      ("n", po::value<long long>()->required(), "n: noisy copies drawn for estimation, >= 1")
      ("sigma", po::value<double>()->required(), "noise level sigma, std of the Gaussian in [0,1]-pixel units, > 0")
      ("alpha", po::value<double>()->default_value(0.001), "failure probability of the certificate, in (0, 1)");
  add_common_options(options);
  po::variables_map vm;
  if (!parse_args(inv, options, {}, vm,
                  {"--count NA --n N --sigma S [--alpha A]",
                   "The certificate n_A votes of n give (Cohen et al., CERTIFY steps 3-4), as one JSON line:\n"
                   "p_a_lower = one-sided Clopper-Pearson lower bound at alpha, abstain when it is < 0.5, else\n"
                   "radius = sigma * Phi^-1(p_a_lower) (l2, [0,1]-pixel units).",
                   "dualrs radius --count 9900 --n 10000 --sigma 0.25 --alpha 0.001"})) {
    return 0;
  }
  inv.ctx->on_root([&] {
    const long long count = vm["count"].as<long long>(), n = vm["n"].as<long long>();
    const double sigma = vm["sigma"].as<double>(), alpha = vm["alpha"].as<double>();
    std::vector<ConfigIssue> issues;
    // Counts beyond 2^53 are not exact in double precision, where the bounds are computed.
    constexpr long long kMaxCount = 1LL << 53;
    if (n < 1) issues.push_back({"--n", "must be >= 1, got " + std::to_string(n)});
    if (n > kMaxCount) issues.push_back({"--n", "must be <= 2^53 = " + std::to_string(kMaxCount) + ", got " + std::to_string(n)});
    if (count < 0 || count > n) issues.push_back({"--count", "must be in [0, n], got " + std::to_string(count)});
    if (!(sigma > 0) || !std::isfinite(sigma)) issues.push_back({"--sigma", "must be finite and > 0, got " + format_decimal(sigma)});
    if (!(alpha > 0 && alpha < 1)) issues.push_back({"--alpha", "must be in (0, 1), got " + std::to_string(alpha)});
    if (!issues.empty()) throw ConfigError("command line", std::move(issues));
    Certificate cert;
    try {
      cert = radius_from_count(count, n, sigma, alpha);
    } catch (const std::exception& e) {
      // Arguments the statistics reject (the rounding-safe bound stays below 1, so a bound that
      // rounds to 1 still gives a finite radius).
      throw ConfigError("command line", "--count", "no finite radius for count = n = " + std::to_string(n) + " at alpha = " +
                                                     format_decimal(alpha) + " in double precision (" + e.what() + ")");
    }
    nlohmann::json out = {{"count", count},         {"n", n},           {"sigma", sigma},
                          {"alpha", alpha},         {"p_a_lower", cert.p_a_lower},
                          {"radius", cert.radius},  {"abstain", cert.abstained()}};
    std::cout << out.dump() << '\n';
  });
  return 0;
}

}  // namespace dualrs::app
