// Site profiles: every shipped one parses; mistakes in a profile are one line naming the key.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "jobs/site_profile.hpp"

namespace tessera {
namespace {

std::string profile_error(const std::string& text) {
  try {
    parse_site_profile(text, "test", "test.toml");
  } catch (const UsageError& error) {
    return error.what();
  }
  return "";
}

TEST(SiteProfile, EveryShippedProfileLoads) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(TESSERA_PROFILE_DIR)) {
    if (entry.path().extension() != ".toml") continue;
    const SiteProfile profile =
        load_site_profile(entry.path().stem().string(), {TESSERA_PROFILE_DIR});
    EXPECT_FALSE(profile.description.empty()) << entry.path();
    ++count;
  }
  EXPECT_GE(count, 3);
}

TEST(SiteProfile, ExamplesSayTheyAreExamples) {
  for (const char* name : {"juwels-booster-example", "marenostrum5-gpp-example"}) {
    const SiteProfile profile = load_site_profile(name, {TESSERA_PROFILE_DIR});
    EXPECT_EQ(profile.description.rfind("EXAMPLE", 0), 0u) << name;
  }
}

TEST(SiteProfile, ReadsEveryKey) {
  const SiteProfile profile = parse_site_profile(R"(
description = "d"
launcher = "mpirun"
srun_mpi = ""
srun_options = ["--cpu-bind=cores"]
mpirun_options = ["--bind-to", "none"]
gpu_request = "gres"
partition = "gpu"
cpus_per_task = 12
cpus_per_node = 48
gpus_per_node = 4
module_purge = true
modules = ["GCC", "OpenMPI"]
setup = ["ulimit -c 0"]
sbatch = ["--exclusive"]
[environment]
B = "2"
A = "$HOME/x"
)",
                                                 "site", "site.toml");
  EXPECT_EQ(profile.launcher, Launcher::mpirun);
  EXPECT_EQ(profile.srun_mpi, "");
  EXPECT_EQ(profile.mpirun_options, (std::vector<std::string>{"--bind-to", "none"}));
  EXPECT_EQ(profile.gpu_request, GpuRequest::gres);
  EXPECT_EQ(profile.cpus_per_task, 12);
  EXPECT_TRUE(profile.module_purge);
  EXPECT_EQ(profile.modules, (std::vector<std::string>{"GCC", "OpenMPI"}));
  ASSERT_EQ(profile.environment.size(), 2u);  // in name order (TOML tables have no order)
  EXPECT_EQ(profile.environment[0], (std::pair<std::string, std::string>{"A", "$HOME/x"}));
  EXPECT_EQ(profile.sbatch, (std::vector<std::string>{"--exclusive"}));
}

TEST(SiteProfile, DefaultsAreSrunWithPmix) {
  const SiteProfile profile = parse_site_profile("", "empty", "empty.toml");
  EXPECT_EQ(profile.launcher, Launcher::srun);
  EXPECT_EQ(profile.srun_mpi, "pmix");
}

TEST(SiteProfile, MistakesNameTheFileAndKey) {
  EXPECT_EQ(profile_error("modles = []"),
            "site profile test.toml: unknown key 'modles'; the keys are documented in "
            "modules/profiles/generic.toml");
  EXPECT_EQ(profile_error("launcher = \"aprun\""),
            "site profile test.toml: launcher must be srun or mpirun");
  EXPECT_EQ(profile_error("modules = \"GCC\""),
            "site profile test.toml: modules must be an array of strings, e.g. [\"a\", \"b\"]");
  EXPECT_EQ(profile_error("cpus_per_task = -1"),
            "site profile test.toml: cpus_per_task must be a non-negative integer");
  EXPECT_EQ(profile_error("[environment]\n\"A-B\" = \"1\""),
            "site profile test.toml: environment.A-B is not a shell variable name");
  EXPECT_NE(profile_error("launcher = "), "");
}

TEST(SiteProfile, UnknownNameListsTheAvailableOnes) {
  try {
    load_site_profile("nosuchsite", {TESSERA_PROFILE_DIR});
    FAIL() << "no error";
  } catch (const UsageError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("site profile 'nosuchsite' not found; pick one of: generic, "
                           "juwels-booster-example, marenostrum5-gpp-example"),
              std::string::npos)
        << message;
  }
  EXPECT_THROW(load_site_profile("./missing.toml", {}), UsageError);
}

TEST(SiteProfile, RequestMustFitTheSitesNodes) {
  const SiteProfile booster = load_site_profile("juwels-booster-example", {TESSERA_PROFILE_DIR});
  JobResources resources;
  resources.tasks_per_node = 8;
  resources.gpus_per_node = 8;
  EXPECT_THROW(check_request_fits_site(resources, booster), UsageError);
  resources.tasks_per_node = 4;
  resources.gpus_per_node = 4;
  EXPECT_NO_THROW(check_request_fits_site(resources, booster));  // 4 x 12 = 48 cores
  resources.cpus_per_task = 16;
  EXPECT_THROW(check_request_fits_site(resources, booster), UsageError);  // 64 > 48
}

}  // namespace
}  // namespace tessera
