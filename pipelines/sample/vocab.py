"""Topic vocabularies of the sample world's communities."""

THEMES: dict[str, list[str]] = {
    "analog_photography": "film grain kodak portra lens aperture darkroom negative scan exposure "
    "rangefinder leica slide velvia developer emulsion shutter".split(),
    "cyberpunk_art": "neon city rain synth chrome hacker implant dystopia glow skyline android "
    "hologram grid circuit midnight magenta".split(),
    "gardening": "soil seedling compost tomato bloom perennial mulch harvest greenhouse pollinator "
    "basil pruning roots trellis orchard meadow".split(),
    "vintage_cars": "chrome carburetor restoration coupe v8 convertible whitewall garage rust "
    "cruiser bumper roadster polish engine classic paint".split(),
    "minimal_design": "whitespace grid typography clean monochrome layout serif balance negative "
    "space poster helvetica muted calm line form".split(),
    "anime_fanart": "sketch character chibi manga cel shading fanart lineart waifu studio "
    "pastel sakura panel mecha episode season".split(),
    "landscape_hiking": "summit trail ridge alpine glacier sunrise valley fjord canyon mist "
    "backpacking pine lake peak trek horizon".split(),
    "street_food": "taco ramen spicy vendor grill dumpling noodle skewer market sauce crispy "
    "broth stall night flavour bite".split(),
    "knitting": "yarn wool stitch pattern sweater needle cable purl skein mohair cozy scarf "
    "cardigan fibre dye mittens".split(),
    "retro_gaming": "pixel cartridge console arcade sprite joystick chiptune speedrun 8bit "
    "emulator boss level crt controller highscore retro".split(),
    "astronomy": "nebula telescope galaxy orbit exposure stars eclipse comet saturn tracking "
    "milkyway deepsky jupiter lunar aurora dark".split(),
    "woodworking": "oak walnut chisel joinery dovetail lathe plane sawdust finish grain bench "
    "router epoxy cabinet mallet maple".split(),
}

GENERAL = "today think really people thing good time make know want look share question "\
    "anyone else first post years love little right great".split()

GENERAL_SUBREDDITS = ["AskReddit", "pics", "funny", "todayilearned"]

SUBREDDIT_SUFFIXES = ["", "Porn", "Club", "Daily", "Talk", "Pics"]

ADJECTIVES = "quiet amber brave lucky sleepy rusty cosmic mellow swift velvet tidy wild "\
    "frosty golden hidden lunar misty noble polar sunny".split()
NOUNS = "otter falcon maple comet walrus pixel lantern fern badger harbor thistle pebble "\
    "raven cedar koala marble tundra willow gecko bison".split()

BOTS = ["AutoModerator", "RemindMeBot", "sneakpeekbot", "WikiSummarizerBot"]
