from pragmatiq.cli import main

main()
