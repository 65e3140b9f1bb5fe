from zeroseg3d.cli import main

raise SystemExit(main())
