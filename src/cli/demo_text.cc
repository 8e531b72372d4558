#include "cli/demo_text.h"

#include <string>

namespace sparkv::cli {
namespace {

// Written for this project; each paragraph is a short note from a fictional device manual.
const char* const kParagraphs[] = {
    "The field unit records soil moisture, air temperature and battery voltage every ten minutes. "
    "Readings are stored on the internal flash card and sent to the base station when the radio link is up. "
    "If the link stays down for more than a day, the unit keeps recording and sends the backlog later.",
    "To replace the battery, switch the unit off, open the lower cover with the supplied key and lift the "
    "old pack out by its strap. Insert the new pack with the label facing the front, close the cover and hold "
    "the power button for three seconds. The status light blinks green twice when the unit is ready.",
    "Calibration should be checked at the start of each season. Place the probe in the reference solution, "
    "wait until the reading is stable, and compare it with the value printed on the bottle. A difference of "
    "more than two percent means the probe needs cleaning or replacement.",
    "The base station keeps a log of every unit it has heard from, with the time of the last message and the "
    "signal strength. Units that have not reported for six hours are shown in orange, and units that have been "
    "silent for a full day are shown in red on the overview page.",
    "Firmware updates are delivered by the base station during the night. A unit downloads the new image in "
    "small blocks, checks the signature and only then restarts into it. If the new image fails to start, the "
    "unit returns to the previous version on its own and reports the failure.",
    "In cold weather the battery delivers less energy, so the unit lowers its reporting rate when the "
    "temperature falls below minus ten degrees. It returns to the normal rate once the temperature has been "
    "above zero for an hour. This behaviour can be turned off in the settings file.",
};

}  // namespace

std::string DemoContextText(int n_paragraphs) {
  std::string text = "Field unit manual.\n\n";
  constexpr int kCount = sizeof(kParagraphs) / sizeof(kParagraphs[0]);
  for (int i = 0; i < n_paragraphs; ++i) {
    text += "Section " + std::to_string(i + 1) + ". ";
    text += kParagraphs[i % kCount];
    text += "\n\n";
  }
  return text;
}

}  // namespace sparkv::cli
