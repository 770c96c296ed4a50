// The row-block form (contrastive_block.h, data parallelism's local loss) against the dense
// definition (contrastive_reference.h): the blocks of any split sum to the dense loss, and their
// gradients to the dense gradients, over the whole option grid.
#include <cmath>
#include <string>

#include "loss_reference.h"
#include "losses/contrastive_block.h"
#include "losses/contrastive_reference.h"
#include "support/check.h"

namespace cw {
namespace {

using test::all_close;
using test::rand64;
using V = std::vector<Variable>;

TEST(ContrastiveBlock, BlocksSumToTheDenseReference) {
  const int64_t n = 7;
  const Tensor zp = rand64({n, 4}, -1, 1, 81), zq = rand64({n, 4}, -1, 1, 82);
  const Tensor t0 = ops::scalar(std::log(1.0 / 0.07), DType::F64);
  for (const auto& [name, cfg] : test::option_grid()) {
    for (const std::vector<int64_t>& cuts : {std::vector<int64_t>{0, 7}, {0, 3, 5, 7}}) {
      V blk = {Variable(zp.clone(), true), Variable(zq.clone(), true), Variable(t0.clone(), true)};
      V ref = {Variable(zp.clone(), true), Variable(zq.clone(), true), Variable(t0.clone(), true)};
      Variable total;
      for (size_t b = 0; b + 1 < cuts.size(); ++b) {
        const Variable l =
            losses::contrastive_loss_block(blk[0], blk[1], blk[2], cfg, cuts[b], cuts[b + 1] - cuts[b]).loss;
        total = total.defined() ? ag::add(total, l) : l;
      }
      const Variable dense = losses::dense_contrastive_loss(ref[0], ref[1], ref[2], cfg, zq);
      const std::string where = name + " blocks=" + std::to_string(cuts.size() - 1);
      EXPECT_NEAR(total.item(), dense.item(), 1e-10) << where;
      total.backward();
      dense.backward();
      for (int k = 0; k < 3; ++k)
        EXPECT_TRUE(all_close(blk[k].grad(), ref[k].grad(), 1e-10, 0)) << where << " input " << k;
    }
  }
}

}  // namespace
}  // namespace cw
