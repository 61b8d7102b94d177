#include "dualrs/io/provenance.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <regex>
#include <string>

#include "dualrs/build_info.h"

namespace dualrs::io {
namespace {

TEST(ProvenanceTest, Sha256KnownVectors) {
  // FIPS 180-2 appendix B.1 and the empty message.
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(ProvenanceTest, UtcNowIsIso8601Seconds) {
  EXPECT_TRUE(std::regex_match(utc_now(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"))) << utc_now();
}

TEST(ProvenanceTest, MakeProvenanceFillsBuildAndEnvironment) {
  const nlohmann::json config = {{"certify", {{"sigma", 0.25}, {"n", 100000}}}, {"dataset", "mnist"}};
  ::setenv("SLURM_JOB_ID", "4242", 1);
  ::setenv("OMPI_COMM_WORLD_SIZE", "3", 1);
  const Provenance p = make_provenance("dualrs.certify", "certify", config, 18446744073709551615ull, 1);
  ::unsetenv("SLURM_JOB_ID");
  ::unsetenv("OMPI_COMM_WORLD_SIZE");

  EXPECT_EQ(p.schema, "dualrs.certify");
  EXPECT_EQ(p.schema_version, 1);
  EXPECT_EQ(p.command, "certify");
  EXPECT_EQ(p.config, config);
  EXPECT_EQ(p.config_sha256, sha256_hex(config.dump()));
  EXPECT_EQ(p.git_revision, DUALRS_GIT_REVISION);
  EXPECT_EQ(p.dualrs_version, DUALRS_VERSION);
  EXPECT_EQ(p.seed, 18446744073709551615ull);
  EXPECT_EQ(p.rng_layout_version, 1);
  EXPECT_EQ(p.slurm_job_id, "4242");
  EXPECT_EQ(p.world_size, 3);
  EXPECT_FALSE(p.hostname.empty());
  EXPECT_EQ(p.created_utc.size(), 20u);
  EXPECT_TRUE(p.finished_utc.empty());
  for (const char* lib : {"hdf5 1.", "boost 1.", "nlohmann_json 3.", "OpenSSL "}) {
    EXPECT_NE(p.library_versions.find(lib), std::string::npos) << lib << " missing in " << p.library_versions;
  }
  EXPECT_EQ(p.library_versions.find("torch"), std::string::npos);  // the app adds it

  const nlohmann::json j = to_json(p);
  EXPECT_EQ(j.at("config_sha256"), p.config_sha256);
  EXPECT_EQ(j.at("seed").get<std::uint64_t>(), p.seed);
  EXPECT_EQ(j.at("config"), config);
  EXPECT_EQ(j.size(), 15u);
}

TEST(ProvenanceTest, WorldSizeDefaultsToOneOutsideLaunchers) {
  ::unsetenv("OMPI_COMM_WORLD_SIZE");
  ::unsetenv("SLURM_NTASKS");
  EXPECT_EQ(make_provenance("dualrs.certify", "certify", nlohmann::json::object(), 0, 1).world_size, 1);
  ::setenv("SLURM_NTASKS", "2", 1);
  EXPECT_EQ(make_provenance("dualrs.certify", "certify", nlohmann::json::object(), 0, 1).world_size, 2);
  ::unsetenv("SLURM_NTASKS");
}

}  // namespace
}  // namespace dualrs::io
