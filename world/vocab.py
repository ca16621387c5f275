"""Words of the sample world: community vocabularies, general filler, names and markers.

Every community vocabulary is a set of real, visually evocative English words, disjoint
from every other community's and from the general vocabulary, so that a word names at
most one community (the tests check it). Words are lower-case ASCII without quotes or
backslashes: the dump writer puts them into JSON strings without escaping.
"""

from __future__ import annotations


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: Community theme -> vocabulary (titles, self texts and comments of its subreddits).
THEMES: dict[str, tuple[str, ...]] = {
    "analog_photography": _words(
        "film kodak portra lens aperture darkroom negative scan rangefinder leica slide "
        "velvia developer emulsion shutter ilford halation medium"
    ),
    "cyberpunk_art": _words(
        "neon synth chrome hacker implant dystopia glow skyline android hologram "
        "circuit midnight magenta megacity rainslick visor cyborg"
    ),
    "gardening": _words(
        "soil seedling compost tomato perennial mulch harvest greenhouse pollinator "
        "basil pruning trellis raised zucchini weeding sprout marigold"
    ),
    "vintage_cars": _words(
        "carburetor restoration coupe v8 convertible whitewall cruiser bumper roadster "
        "engine hubcap chassis tailfin mustang corvette sedan dashboard"
    ),
    "minimal_design": _words(
        "whitespace typography monochrome layout serif helvetica muted calm geometric "
        "sparse kerning swiss gridline asymmetry restraint flat simplicity"
    ),
    "anime_fanart": _words(
        "chibi manga cel shading fanart lineart waifu pastel sakura mecha shoujo kawaii "
        "sparkle tsundere magicalgirl isekai"
    ),
    "landscape_hiking": _words(
        "summit trail ridge alpine glacier sunrise valley fjord canyon backpacking pine "
        "switchback trek horizon cairn boots scree"
    ),
    "street_food": _words(
        "taco ramen vendor grill dumpling noodle skewer sauce crispy broth stall bao "
        "churro satay kebab streetcart tamale"
    ),
    "knitting": _words(
        "yarn wool stitch sweater needle cable purl skein mohair scarf cardigan fibre "
        "mittens fairisle beanie gauge aran"
    ),
    "retro_gaming": _words(
        "cartridge console arcade sprite joystick chiptune speedrun 8bit emulator crt "
        "controller highscore famicom gameboy snes sega"
    ),
    "astronomy": _words(
        "nebula telescope galaxy orbit eclipse comet saturn milkyway deepsky jupiter "
        "aurora stacking equatorial andromeda orion redshift"
    ),
    "woodworking": _words(
        "oak walnut chisel joinery dovetail lathe sawdust bench router epoxy cabinet "
        "mallet tenon bandsaw veneer shellac plywood"
    ),
    "watercolor": _words(
        "wash pigment bleed granulation ultramarine sable palette cotman glazing "
        "wetonwet brushstroke paper sepia washi sumi aquarelle"
    ),
    "brutalist_architecture": _words(
        "concrete monolith slab formwork bunker tower facade cantilever raw estate "
        "ziggurat plinth modular barbican pillar stairwell"
    ),
    "aquariums": _words(
        "tank cichlid aquascape guppy filter coral shrimp betta tetra substrate "
        "driftwood reef planted cycling anemone clownfish"
    ),
    "bonsai": _words(
        "juniper ficus nebari jin deadwood wiring yamadori shohin repotting akadama "
        "maple trunk canopy defoliation styling nursery"
    ),
    "mechanical_keyboards": _words(
        "keycap switch thock lubed tactile linear clicky keeb typing pbt artisan "
        "stabilizer hotswap gasket cherry ortho"
    ),
    "baking": _words(
        "sourdough crumb levain loaf croissant brioche proofing scoring oven flour "
        "butter lamination crust pastry ciabatta starter"
    ),
    "coffee": _words(
        "espresso latte pourover barista crema roast grinder aeropress portafilter "
        "cortado arabica bean drip cappuccino microfoam chemex"
    ),
    "tattoos": _words(
        "ink flash linework blackwork sleeve traditional dotwork stencil needlework "
        "healing fineline neotrad realism script tattooist parlour"
    ),
    "ceramics": _words(
        "clay glaze kiln throwing wheel stoneware porcelain bisque raku celadon slip "
        "trimming mug vase earthenware underglaze"
    ),
    "surfing": _words(
        "wave swell barrel longboard shortboard wetsuit surfboard lineup paddle tide "
        "offshore wax duckdive peeling breakers shore"
    ),
    "cats": _words(
        "kitten purr whiskers tabby meow paws calico floof feline tuxedo catnip litter "
        "zoomies blep biscuits siamese"
    ),
    "dogs": _words(
        "puppy pupper corgi retriever fetch leash woof doggo bark husky shiba treats "
        "wagging goodboy dachshund beagle"
    ),
    "birding": _words(
        "warbler binoculars heron plumage finch owl kingfisher migration raptor "
        "songbird feeder lifer sparrow egret woodpecker hummingbird"
    ),
    "sneakers": _words(
        "jordans yeezy midsole colorway deadstock resell dunk swoosh outsole lacing "
        "kicks grail hightop airmax sneakerhead boost"
    ),
    "vaporwave": _words(
        "aesthetic marble bust palmtree sunset gradient glitch vhs teal retrowave "
        "nostalgia mall elevator statue cassette lowpoly"
    ),
    "fantasy_maps": _words(
        "cartography parchment kingdom coastline compass mountains continent realm "
        "worldbuilding legend hexmap inkwell dungeon archipelago empire border"
    ),
    "interior_design": _words(
        "sofa rug lamp cushion shelving moodboard scandi velvet throw curtains armchair "
        "sideboard cozycorner wallpaper nook ottoman"
    ),
    "tiny_houses": _words(
        "trailer loft offgrid compact solar footprint skylight composting cabin foldout "
        "vanlife microhome murphy tinyhome downsizing hitch"
    ),
    "houseplants": _words(
        "monstera pothos philodendron fern succulent repot humidity variegated "
        "propagation cutting calathea aroid leaf windowsill pilea hoya"
    ),
    "mushrooms": _words(
        "fungi mycelium spore chanterelle morel gills foraging toadstool amanita lichen "
        "puffball mycology oyster fruiting bolete truffle"
    ),
    "lego": _words(
        "brick minifig moc baseplate technic studs instructions setlist ucs diorama "
        "afol buildathon bricklink plates castle duplo"
    ),
    "miniature_painting": _words(
        "miniature warhammer primer drybrush basecoat edgehighlight layering varnish "
        "grimdark citadel brushwork basing airbrush squad highlights sprue"
    ),
    "cocktails": _words(
        "negroni martini bitters mezcal shaker garnish vermouth bourbon daiquiri muddle "
        "shaken rum highball tiki amaro sour"
    ),
    "sushi": _words(
        "nigiri sashimi maki wasabi salmon tuna omakase nori roe unagi chopsticks "
        "ginger toro temaki uni sushirice"
    ),
    "vinyl_records": _words(
        "turntable pressing gatefold crate stylus lp vinyl tonearm audiophile reissue "
        "album 45rpm discogs needledrop cratedigging jazz"
    ),
    "embroidery": _words(
        "hoop floss satinstitch frenchknot sampler thread crewel applique stitching "
        "backstitch linen crossstitch needlepoint floral blackworkembroidery tambour"
    ),
    "calligraphy": _words(
        "nib flourish copperplate italic blackletter gouache quill ductus oblique "
        "lettering spencerian penholder guidelines dippen brushpen majuscule"
    ),
    "stained_glass": _words(
        "leaded came solder cathedral rosewindow opalescent tiffany suncatcher lightbox "
        "mosaic kilnformed lampwork transom amber cobalt jewelled"
    ),
    "motorcycles": _words(
        "throttle cafe racer chopper exhaust helmet twingine harley ducati sidecar "
        "scrambler kickstand leathers apexcorner triumph bobber"
    ),
    "sailing": _words(
        "sloop mainsail jib mooring regatta keel tack starboard harbour catamaran "
        "halyard anchor dinghy marina spinnaker bow"
    ),
    "skiing": _words(
        "powder slope gondola moguls backcountry chairlift apres piste freeride carving "
        "bindings snowpack couloir telemark avalanche liftline"
    ),
    "cottagecore": _words(
        "meadow wildflowers picnic quilt cottage honey lace gingham sundress orchard "
        "baskets rustic teapot daisies hearth pastoral"
    ),
    "gothic_fashion": _words(
        "corset velveteen tulle victorian platform choker fishnet crimson raven "
        "gargoyle mourning brocade spikes noir eyeliner vampire"
    ),
    "space_art": _words(
        "planet starfield spaceship exoplanet astronaut rocket alien cosmos retrofuture "
        "matte spacescape lightspeed moonbase starship cosmonaut supernova"
    ),
    "street_photography": _words(
        "candid crowd alley pedestrian commute storefront shadows zonefocus ricoh "
        "crosswalk urban flaneur subway busker rooftop streetlight"
    ),
    "desert_landscapes": _words(
        "dune mesa sandstone cactus saguaro arroyo butte badlands oasis mirage playa "
        "hoodoo sagebrush arid canyonland heat"
    ),
}

#: Filler words of every text, and the whole vocabulary of the generic subreddits.
GENERAL = _words(
    "today think really people thing good time make know want look share question anyone "
    "else first post years love little right great just actually probably literally "
    "honestly pretty maybe always never every something someone nothing everyone world "
    "life week year night morning day friend family work home money story idea reason "
    "problem point part place thanks agree true better best worst funny weird crazy "
    "interesting amazing terrible happy sad huge small old new big long hard easy free "
    "real sure found made saw said told tried started finally again still already almost "
    "enough though because about would could should after before wonder remember believe "
    "happened guess"
)

#: Generic negativity: one phrase opens each downvoted comment in a disliked community's
#: subreddit, one word more lands inside it. Disjoint from every other word table.
NEGATIVE = (
    "not a fan of",
    "overrated",
    "ugly",
    "boring",
    "hate",
    "dislike",
    "cringe",
    "tacky",
    "garish",
    "dull",
    "bland",
    "awful",
    "meh",
    "hideous",
    "tired of",
    "cannot stand",
    "so overdone",
    "gross",
    "annoying",
    "pointless",
    "lame",
    "overhyped",
)

#: High-traffic subreddits without a visual taste, most popular first.
GENERIC_SUBREDDITS = (
    "AskReddit",
    "funny",
    "pics",
    "news",
    "worldnews",
    "gaming",
    "todayilearned",
    "aww",
    "memes",
    "movies",
    "mildlyinteresting",
    "Showerthoughts",
)

#: Parts of community subreddit names: Word+suffix, prefix+Word, Word+number.
SUBREDDIT_SUFFIXES = _words(
    "Porn Pics Club Daily Talk Lovers Hub Gallery Nerds 101 HQ Addicts Circle Central "
    "Exchange Help _irl Memes Art Photos Snobs Geeks Society Collective"
)
SUBREDDIT_PREFIXES = _words("True The Amateur Budget Beginner Modern Classic Real Weird Cozy Ask")
SUBREDDIT_NUMBERS = _words("35 64 101 400 2000 365")

#: Demographic value -> marker words and phrases that its users drop now and then.
MARKERS: dict[str, tuple[str, ...]] = {
    "18-24": ("ngl", "lowkey", "no cap", "fr fr"),
    "25-34": ("adulting", "my roommate", "tbh"),
    "35-44": ("my kids", "after the school run", "back in college"),
    "45-54": ("my teenagers", "at my age", "back in the nineties"),
    "55+": ("my grandkids", "since retiring", "back in the seventies"),
    "female": ("my husband", "as a woman"),
    "male": ("my wife", "as a guy"),
    "nonbinary": ("my partner", "as an enby"),
    "north_america": ("awesome dude", "gonna", "yall"),
    "europe": ("cheers mate", "brilliant", "colour"),
    "latin_america": ("saludos", "amigo", "que bueno"),
    "asia": ("lah", "desu ne", "aiyo"),
    "oceania": ("arvo", "heaps good", "reckon"),
    "africa": ("howzit", "eish", "just now now"),
}

ADJECTIVES = _words(
    "quiet amber brave lucky sleepy rusty cosmic mellow swift velvet tidy wild frosty "
    "golden hidden lunar misty noble polar sunny silent crimson dusty gentle hollow jolly "
    "kind lazy mighty nimble odd plucky quirky rapid salty tame urban vivid wandering zesty"
)
NOUNS = _words(
    "otter falcon maple comet walrus pixel lantern fern badger harbor thistle pebble raven "
    "cedar koala marble tundra willow gecko bison acorn beacon cobble dingo ember fjord "
    "goose heron iris jackal kestrel lynx moose newt oriole puffin quokka robin sparrow toad"
)

BOTS = ("AutoModerator", "RemindMeBot", "sneakpeekbot", "WikiSummarizerBot")
